"""Atomic replacement of files and directories, so a reader that lists the lake sees old or new, never a mix."""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@contextmanager
def exclusive(lock_file: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``lock_file`` across processes; the kernel releases it if the holder dies.

    Yields whether this process holds it: always when ``wait``; without, False at once when another holds it.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def write_json_atomically(path: Path, value: object) -> None:
    """Write ``value`` as JSON so that readers see the old file or the new one, never a partial one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(value, sort_keys=True))
    os.replace(temporary, path)


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by its owner only (it may hold a password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)
    os.replace(temporary, path)


def exchange(first: Path, second: Path) -> None:
    """Atomically swap two directories (Linux renameat2 RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    result = libc.renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"atomic exchange of {first} and {second} failed: {os.strerror(errno)}")


def replace_directory(new: Path | None, target: Path) -> None:
    """Make ``target`` hold what ``new`` holds (or nothing when ``new`` is None) in one atomic step.

    ``new`` must be on the same file system as ``target``; it is consumed. An existing ``target`` is swapped
    out with :func:`exchange` and then deleted, so a reader listing ``target`` never sees a mix of both.
    """
    if new is None:
        if target.exists():
            retired = target.with_name(f".{target.name}.retired-{os.getpid()}")
            os.rename(target, retired)
            shutil.rmtree(retired)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.rename(new, target)
        return
    exchange(new, target)
    shutil.rmtree(new)  # after the exchange it holds the previous contents
