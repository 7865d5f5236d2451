"""Processes the platform starts in the background (broker, stream, the main job's services): start, find,
stop, and stop gracefully on a signal."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from smartcity.settings import PROJECT_ROOT

log = logging.getLogger(__name__)


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child, so a killed process is not seen as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def command_line(pid: int) -> str:
    result = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return result.stdout


def is_alive(pid: int, *markers: str) -> bool:
    """True when ``pid`` runs (not a zombie) and its command line contains every marker."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False)
    if not state.stdout.strip() or state.stdout.strip().startswith("Z"):
        return False
    return all(marker in command_line(pid) for marker in markers) if markers else True


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.2)
    return not is_alive(pid)


def spawn(command: list[str], log_file: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session (so signals reach its whole group only when we send them),
    appending its output to ``log_file``."""
    with log_file.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def live_pid(pid_file: Path, *markers: str) -> int | None:
    """The pid recorded in ``pid_file`` if that process is alive and matches ``markers``; a stale file is removed."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if is_alive(pid, *markers):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def terminate(pid: int, pid_file: Path, timeout: float, name: str) -> None:
    """SIGTERM (each service's graceful stop), SIGKILL to the process group after ``timeout``; drop the pid file."""
    os.kill(pid, signal.SIGTERM)
    if not wait_dead(pid, timeout):
        log.warning("%s (pid %d) did not stop within %.0fs of SIGTERM; killing it", name, pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        wait_dead(pid, 10)
    pid_file.unlink(missing_ok=True)


@contextlib.contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """The first SIGINT/SIGTERM sets the event (finish cleanly); a second one raises KeyboardInterrupt."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("%s received: finishing cleanly (send it again to stop at once)", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
