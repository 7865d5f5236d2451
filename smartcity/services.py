"""The platform's background services, each described once: how it starts, how it is known to be ready, how it
stops.

Every long-running process the platform starts (the Kafka broker, the simulator, the stream, the Spark Connect
server, the Dagster daemon and UI, the dashboard) is a :class:`Service`, defined next to its own code. One
lifecycle drives them all: its ports are checked free before it starts, its pid is kept in
``var/run/<name>.pid`` and its output in ``var/logs/<name>.log`` whoever started it, it is ready when its probe
says so, and it stops on its own signal with its whole process group.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from smartcity.atomic import exclusive
from smartcity.errors import PlatformError
from smartcity.ports import require_free_port
from smartcity.processes import is_alive, live_pid, spawn, stop_process
from smartcity.settings import ENV_PREFIX, PROJECT_ROOT, RuntimePaths

log = logging.getLogger(__name__)


def pid_file_of(paths: RuntimePaths, name: str) -> Path:
    """Where service ``name`` keeps its pid, whoever started it."""
    return paths.run / f"{name}.pid"


def running_pid(paths: RuntimePaths, name: str, *markers: str) -> int | None:
    """The pid of service ``name`` if it runs and its command line has ``markers`` (a stale pid file is removed)."""
    return live_pid(pid_file_of(paths, name), *markers)


class Port(NamedTuple):
    """A port a service listens on, and the setting that moves it (``DASHBOARD_PORT``)."""

    host: str
    port: int
    setting: str

    @property
    def remedy(self) -> str:
        return f"choose another port with {ENV_PREFIX}{self.setting}"


class ChosenPort(NamedTuple):
    """A port a service chose itself and keeps in ``kept_in``: a new one is chosen when that file is deleted."""

    host: str
    port: int
    kept_in: Path

    @property
    def remedy(self) -> str:
        return f"delete {self.kept_in} to choose new ports"


class Started(NamedTuple):
    pid: int
    already_running: bool
    process: subprocess.Popen[bytes] | None
    """The process, when this call started it (a child of ours)."""


@dataclass(frozen=True)
class Service:
    """One background service of the platform."""

    name: str
    """Its name in commands, ``var/run/<name>.pid`` and ``var/logs/<name>.log``."""
    title: str
    """How the banner and `smartcity status` call it."""
    summary: str
    """What the banner says it offers (an address, what it does)."""
    paths: RuntimePaths
    command: Callable[[], list[str]]
    """Prepares what the service needs (configuration, storage) and returns its command line."""
    markers: tuple[str, ...]
    """Text its command line contains, so a pid file left by a crash never names an unrelated process."""
    by_hand: tuple[str, ...] = ()
    """Text the command line of a run started by hand in a terminal contains (`smartcity stream start
    --foreground`); such a run writes the pid file too, and counts as the running service."""
    ports: tuple[Port | ChosenPort, ...] = ()
    ready: Callable[[int], bool] | None = None
    """Whether the service (its pid given) is ready; None: ready once it runs."""
    ready_timeout: float = 180.0
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 90.0
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables added to the environment it runs in."""
    needs: tuple[str, ...] = ()
    """Services that must be ready before this one starts."""
    port_grace: float = 10.0
    """Seconds a port may stay taken after a crash while the old process's sockets are released."""

    @property
    def pid_file(self) -> Path:
        return pid_file_of(self.paths, self.name)

    @property
    def log_file(self) -> Path:
        return self.paths.logs / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of the running service, or None (a stale pid file is removed)."""
        return live_pid(self.pid_file, *self.markers, or_markers=self.by_hand)

    def check_ports(self, grace: float = 0.0) -> None:
        """Fail naming the setting to change when a port the service needs is taken."""
        for port in self.ports:
            require_free_port(port.host, port.port, port.remedy, grace=grace)

    def start(self, wait: bool = True) -> Started:
        """Start the service unless it runs, and (``wait``) return once it is ready. Concurrent starts queue."""
        with exclusive(self.paths.run / f"{self.name}.start.lock"):
            pid = self.pid()
            if pid is not None:
                started = Started(pid, True, None)
            else:
                self.check_ports(grace=self.port_grace)
                process = spawn(self.command(), self.log_file, cwd=PROJECT_ROOT, env=self.env)
                self.pid_file.write_text(str(process.pid))
                started = Started(process.pid, False, process)
                log.debug("%s starting (pid %d), log: %s", self.title, process.pid, self.log_file)
            if wait:
                self.await_ready(started)
        return started

    def await_ready(self, started: Started) -> None:
        """Wait until the probe says ready; fail early, with the log's last lines, if the service exits."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if not self._runs(started):
                self.pid_file.unlink(missing_ok=True)
                status = "" if started.process is None else f" (status {started.process.returncode})"
                raise PlatformError(
                    f"{self.title} exited during start-up{status}; last lines of {self.log_file}:\n{self.log_tail()}"
                )
            if self.ready is None or self.ready(started.pid):
                if started.process is not None:
                    log.debug("%s ready", self.title)
                return
            if time.monotonic() >= deadline:
                if started.process is not None:
                    self.stop()
                raise PlatformError(
                    f"{self.title} (pid {started.pid}) was not ready within {self.ready_timeout:.0f}s; "
                    f"last lines of {self.log_file}:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    @staticmethod
    def _runs(started: Started) -> bool:
        if started.process is not None:
            return started.process.poll() is None
        return is_alive(started.pid)

    def stop(self, timeout: float | None = None) -> int | None:
        """Stop the service gracefully (its own signal), with its process group; the pid it had, or None."""
        pid = self.pid()
        if pid is None:
            return None
        stop_process(pid, self.stop_signal, self.stop_timeout if timeout is None else timeout, self.title)
        self.pid_file.unlink(missing_ok=True)
        return pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log yet)"


def answers(url: str) -> bool:
    """Readiness of a web service: ``url`` answers HTTP (any status but an error)."""
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
        return True
    return False


def listens(host: str, port: int) -> bool:
    """Readiness of a server without an HTTP endpoint: it accepts connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2):
        return True
    return False
