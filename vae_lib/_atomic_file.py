"""Writing a file so that it is complete or absent: never half written, whatever kills the writer.

The content goes to a temporary file ``.NAME.PID-XXXXXXXX.partial`` beside the target, is flushed to disk,
then renamed over the target (``os.replace`` is atomic), so a crash mid-write leaves the previous file
whole. The next write of the same target removes the temporary files that such a crash left behind.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from vae_lib._checks import first_line


def write_atomically(path: Path, write: Callable[[BinaryIO], object], what: str = "the file") -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then put it in place of ``path`` whole.

    An ``OSError`` or ``RuntimeError`` while writing (a full disk, a lost mount) is raised as an ``OSError``
    that names ``what`` and ``path``, never the temporary file, which is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(path)
    descriptor, temporary = _create_partial(path)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, (OSError, RuntimeError)):
            reason = error.strerror if isinstance(error, OSError) and error.strerror else first_line(error)
            failure = (type(error) if isinstance(error, OSError) else OSError)(f"cannot write {what} {path}: {reason}")
            failure.errno = getattr(error, "errno", None)
            raise failure from error
        raise
    # Make the rename itself durable: fsync the folder that holds the new name.
    with contextlib.suppress(OSError):
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _create_partial(path: Path) -> tuple[int, Path]:
    """Open a new temporary file beside ``path``. Unlike ``mkstemp`` (always 0600) it is created with mode 0666
    less the umask, the permissions of every other file the process writes, which the rename keeps."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial"
        with contextlib.suppress(FileExistsError):
            return os.open(temporary, flags, 0o666), temporary


def _process_is_running(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # Windows' os.kill would terminate it: assume it is running
        return True
    try:
        os.kill(pid, 0)  # signal 0 only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    return True


def _remove_stale_partials(path: Path) -> None:
    """Delete the temporary files of earlier saves to ``path`` whose writer was killed mid-write.

    A writer still running keeps its file. Names from before the process id was part of them (``mkstemp``'s
    eight random characters) are always stale. The patterns admit no dot, so another target whose name
    starts with ``path.name`` is never touched."""
    prefix, suffix = f".{path.name}.", ".partial"
    for candidate in path.parent.glob(glob.escape(prefix) + "*" + suffix):
        middle = candidate.name[len(prefix) : -len(suffix)]
        current = re.fullmatch(r"(\d+)-[0-9a-f]{8}", middle)
        stale = not _process_is_running(int(current[1])) if current else re.fullmatch(r"[a-z0-9_]{8}", middle)
        if stale:
            with contextlib.suppress(OSError):
                candidate.unlink()
