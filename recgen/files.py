"""File-system helpers every module may import (it imports nothing of recgen): atomic writes through readable
temp files, and where an output the user pointed at goes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() gives a new file in this process


def mkstemp_readable(dir: Path, prefix: str = "", suffix: str = "") -> tuple[int, str]:
    """tempfile.mkstemp with the mode a plainly created file would get: mkstemp makes files 0600, and the rename
    that publishes a temporary file would carry that over, leaving run files unreadable to the group (a colleague,
    a web server under another user)."""
    fd, tmp = tempfile.mkstemp(dir=dir, prefix=prefix, suffix=suffix)
    os.fchmod(fd, FILE_MODE)
    return fd, tmp


def atomic_write(path: Path, data: bytes | str) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = mkstemp_readable(path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # named by the file asked for, not by its folder or temp file
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _fsync_dir(path: Path) -> None:
    """Make the renames into folder `path` durable before a step that relies on them (a power cut, not a kill)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


def output_file(out: str | os.PathLike, name: str) -> Path:
    """Where to write a file the user pointed `out` at: `out` itself, or `out/name` when `out` names a folder (an
    existing one, or one written with a trailing slash)."""
    if str(out).endswith(("/", os.sep)) or Path(out).is_dir():
        return Path(out) / name
    return Path(out)
