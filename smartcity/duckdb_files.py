"""Short-lived connections to DuckDB files shared by several processes (runs, the dashboard, a shell).

DuckDB lets one process at a time open a file for writing, so every writer opens, works and closes quickly,
and waits with backoff while another process holds the lock instead of failing the run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from smartcity.errors import PlatformError

LOCK_WAIT_S = 120.0


def _locked(error: duckdb.Error) -> bool:
    return "lock" in str(error).lower()


@contextmanager
def connect(path: Path, read_only: bool = False, wait_s: float = LOCK_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to ``path``, retried while another process holds the file's lock."""
    deadline, delay = time.monotonic() + wait_s, 0.05
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            connection = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as error:
            if not _locked(error) or time.monotonic() > deadline:
                raise PlatformError(f"cannot open {path}: {error}") from error
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    try:
        yield connection
    finally:
        connection.close()
