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


def listener(port: int) -> str | None:
    """Who listens on ``port`` (any address): 'pid N (name: command line)', 'a process of another user', or None
    when no socket listens there (one may still be closing)."""
    with contextlib.suppress(psutil.Error, OSError):
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
                return _process(connection.pid)
    return None


def _process(pid: int | None) -> str:
    if pid is None:
        return "a process of another user"
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        return f"pid {pid} ({process.name()}: {' '.join(' '.join(process.cmdline()).split())[:120]})"
    return f"pid {pid}"


def require_free_port(host: str, port: int, remedy: str, grace: float = 0.0) -> None:
    """Raise :class:`PlatformError` saying how to move the port (``remedy``) if ``host:port`` is taken.

    A port a live process listens on fails at once, naming it. Otherwise ``grace`` seconds allow a process that was
    just killed to finish releasing its sockets.
    """
    deadline = time.monotonic() + grace
    while (error := _bind_error(host, port)) is not None:
        if (holder := listener(port)) is not None:
            raise PlatformError(f"port {port} on {host} is taken by {holder}. Stop it, or {remedy}.")
        if time.monotonic() >= deadline:
            raise PlatformError(
                f"port {port} on {host} is already in use ({error.strerror}). Stop the process using it, or {remedy}."
            )
        time.sleep(0.25)
