"""Package attributes imported on first use (PEP 562), so that `import recgen.classify.config`, or the command
line's `--help`, does not load torch through the package's __init__."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module-level __getattr__ for `package`: attribute `name` is imported from module `where[name]` when first
    read, then kept in the package so later reads skip this function."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
