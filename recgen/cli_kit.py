"""What every `recgen` subcommand module shares: options generated from a config dataclass, user mistakes as one
line and exit code 2, JSON output. A module of its own so that recgen/cli.py and the task CLIs beside their code
(recgen/detect/cli.py, recgen/restore/cli.py) import it without importing each other."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import sys
import typing
import warnings
from typing import Annotated, Any, Callable

import typer

from recgen.errors import RecgenError

# How image inputs are read (recgen.data.read_image; docs/ARCHITECTURE.md, "Input limits"), for the --help of
# every command that takes image files.
IMAGES_HELP = ("image files, folders or globs (each at most 40 megapixels, checked from the header; 16-bit images "
               "are scaled to 8 bits, transparent pixels composited over white)")
NOT_EVALUATED = "trained; not evaluated, as the data has no test split and --val-fraction is 0"


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def user_errors(fn: Callable) -> Callable:
    """User mistakes (RecgenError) -> one line on stderr and the error's exit code (2), no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        warnings.showwarning = _one_line_warning
        try:
            return fn(*args, **kwargs)
        except RecgenError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None
        except OSError as e:  # a path the user named cannot be written or read (permissions, a file in the way)
            where = f"{e.filename}: " if e.filename else ""
            why = "a file stands where a folder is needed" if isinstance(e, (FileExistsError, NotADirectoryError)) \
                else e.strerror or e
            typer.echo(f"error: {where}{why}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def field_help(cls) -> dict[str, str]:
    """Each dataclass field's declared help text (`recgen.config.opt`: metadata["help"])."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def dataclass_options(cls, skip: tuple[str, ...] = (), only: tuple[str, ...] | None = None,
                      overrides: dict[str, dict[str, Any]] | None = None) -> list[inspect.Parameter]:
    """Typer options (keyword-only parameters) from the fields of dataclass `cls`. A field's metadata gives
    its help ("help"), its flag ("flag": "class" -> --class) and hides a
    deprecated name ("deprecated"); overrides[name] may change a field's "default" or "help" for one command."""
    helps, hints = field_help(cls), typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        if f.name in skip or only is not None and f.name not in only:
            continue
        over = (overrides or {}).get(f.name, {})
        flag = (f"--{f.metadata['flag']}",) if "flag" in f.metadata else ()
        option = typer.Option(*flag, help=over.get("help", f.metadata.get("help", helps.get(f.name, ""))),
                              show_default=True, hidden=bool(f.metadata.get("deprecated")))
        ann = Annotated[hints[f.name], option]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                        default=over.get("default", f.default), annotation=ann))
    return params


def config_command(cls, handler: Callable[[dict[str, Any]], None], skip: tuple[str, ...] = ()) -> Callable:
    """A typer command whose options are the fields of dataclass `cls`; calls handler(dict of given options)."""
    params = dataclass_options(cls, skip)
    defaults = {p.name: p.default for p in params}

    def command(**kwargs):
        # Only options the user gave are passed on: the config dataclass fills in the rest, and training options
        # left out are sized to the data (recgen.defaults). One given at its default value still counts as given.
        handler({k: v for k, v in kwargs.items() if v != defaults[k] or _given(k)})

    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    return user_errors(command)


def options_from(cls, into: str = "options", only: tuple[str, ...] | None = None,
                 overrides: dict[str, dict[str, Any]] | None = None) -> Callable[[Callable], Callable]:
    """Decorator of a typer command: the fields of dataclass `cls` (or those in `only`) become its options,
    and the command receives them as one `cls` instance, keyword `into`. Put it under @user_errors, so that a
    value `cls` refuses when built is a one-line error."""

    def wrap(fn: Callable) -> Callable:
        hints = typing.get_type_hints(fn, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(fn).parameters.values() if p.name != into]
        extra = dataclass_options(cls, only=only, overrides=overrides)
        names = [p.name for p in extra]

        @functools.wraps(fn)
        def command(**kwargs):
            values = {k: kwargs.pop(k) for k in names}
            return fn(**kwargs, **{into: cls(**values)})

        # the command's arguments, then these options, then its other options (all passed by keyword)
        first = [p for p in own if p.default is inspect.Parameter.empty]
        last = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p not in first]
        params = first + extra + last
        command.__signature__ = inspect.Signature(params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return wrap


def _given(name: str) -> bool:
    """Whether option `name` of the running command came from the command line (or the environment)."""
    try:  # recent typer vendors its own click
        from typer._click import core, globals as click_globals
    except ImportError:
        import click.core as core
        import click.globals as click_globals
    ctx = click_globals.get_current_context(silent=True)
    source = ctx.get_parameter_source(name) if ctx is not None else None
    return source is not None and source != core.ParameterSource.DEFAULT


def emit(obj: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(obj, indent=None, default=str))
