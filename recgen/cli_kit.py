"""What every `recgen` subcommand module shares: options generated from a config dataclass, user mistakes as one
line and exit code 2, JSON output. A module of its own so that recgen/cli.py and the task CLIs beside their code
(recgen/detect/cli.py, recgen/restore/cli.py) import it without importing each other."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import re
import sys
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
    """The `# comment` after each dataclass field is its help text (one place to document an option)."""
    out = {}
    for klass in reversed(cls.__mro__):
        try:
            src = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for m in re.finditer(r"^\s+(\w+): [^=\n]+=[^#\n]*#\s*(.+)$", src, re.M):
            out[m.group(1)] = m.group(2).strip()
    # help declared on the field (field(metadata={"help": ...})), the session's convention for new options
    out.update({f.name: f.metadata["help"] for f in dataclasses.fields(cls) if "help" in f.metadata})
    return out


def config_command(cls, handler: Callable[[dict[str, Any]], None], skip: tuple[str, ...] = ()) -> Callable:
    """A typer command whose options are the fields of dataclass `cls`; calls handler(dict of given options)."""
    helps = field_help(cls)
    params, annotations = [], {}
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.name not in skip}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        t = {"int": int, "float": float, "str": str, "bool": bool}.get(str(f.type), f.type)
        ann = Annotated[t, typer.Option(help=helps.get(f.name, ""), show_default=True)]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=ann))
        annotations[f.name] = ann

    def command(**kwargs):
        # Only options the user gave are passed on: the config dataclass fills in the rest, and training options
        # left out are sized to the data (recgen.defaults). One given at its default value still counts as given.
        handler({k: v for k, v in kwargs.items() if v != defaults[k] or _given(k)})

    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = annotations
    return user_errors(command)


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
