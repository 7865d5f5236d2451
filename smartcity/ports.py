"""Checks that a port the platform is about to listen on is free, with a message naming the setting."""

from __future__ import annotations

import socket
import time

from smartcity.errors import PlatformError


def _bind_error(host: str, port: int) -> OSError | None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


def require_free_port(host: str, port: int, remedy: str, grace: float = 0.0) -> None:
    """Raise :class:`PlatformError` saying how to move the port (``remedy``) if ``host:port`` stays taken.

    ``grace`` seconds allow a process that was just killed to finish releasing its sockets.
    """
    deadline = time.monotonic() + grace
    while (error := _bind_error(host, port)) is not None:
        if time.monotonic() >= deadline:
            raise PlatformError(
                f"port {port} on {host} is already in use ({error.strerror}). Stop the process using it, or {remedy}."
            )
        time.sleep(0.25)
