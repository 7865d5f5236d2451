"""Checks that a port the platform is about to listen on is free, with a message naming the setting and, where the
system tells, the process holding it."""

from __future__ import annotations

import contextlib
import socket
import time

import psutil

from smartcity.errors import PlatformError

LOOPBACK = "127.0.0.1"
"""Where the platform's own servers listen unless a setting says otherwise."""


def _bind_error(host: str, port: int) -> OSError | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


def listening_pids(port: int) -> list[int | None]:
    """The pids of the processes listening on ``port`` (any address); None for a socket whose owner this user cannot
    see: another user's process, or one whose process is still exiting."""
    with contextlib.suppress(psutil.Error, OSError):
        return [
            connection.pid
            for connection in psutil.net_connections(kind="tcp")
            if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port
        ]
    return []


def _describe(pid: int | None) -> str:
    if pid is None:
        return "a process this user cannot see (another user's, or one still exiting)"
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        return f"pid {pid} ({process.name()}: {' '.join(' '.join(process.cmdline()).split())[:120]})"
    return f"pid {pid}"


def require_free_port(host: str, port: int, remedy: str, grace: float = 0.0) -> None:
    """Raise :class:`PlatformError` saying how to move the port (``remedy``) if ``host:port`` is taken.

    A port a visible live process listens on fails at once, naming it. Otherwise ``grace`` seconds allow a process
    that was just killed to finish releasing its sockets: its listening socket can outlive its pid for a moment, and
    then has no owner anyone can see.
    """
    deadline = time.monotonic() + grace
    while (error := _bind_error(host, port)) is not None:
        pids = listening_pids(port)
        live = [pid for pid in pids if pid is not None]
        if live or (pids and time.monotonic() >= deadline):
            holder = _describe(live[0] if live else None)
            raise PlatformError(f"port {port} on {host} is taken by {holder}. Stop it, or {remedy}.")
        if time.monotonic() >= deadline:
            raise PlatformError(
                f"port {port} on {host} is already in use ({error.strerror}). Stop the process using it, or {remedy}."
            )
        time.sleep(0.25)
