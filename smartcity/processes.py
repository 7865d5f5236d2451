"""Processes the platform starts in the background: spawn one in a session of its own, recognise it again from its
pid, and stop it together with everything it started.

Each spawned process leads a process group (its own session), so stopping a service reaches the processes it
started too (a Dagster code server, a Spark JVM) even when they outlive their parent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import psutil

log = logging.getLogger(__name__)
GROUP_GRACE_S = 10.0
"""How long what is left of a stopped service's process group has to exit after SIGTERM, before SIGKILL."""
LOG_LIMIT_BYTES = 50_000_000
"""A service's log beyond this size is rotated when the service starts."""


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child, so a dead child is not seen as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def command_line(pid: int) -> str:
    """The process's command line, or '' when it is gone."""
    with contextlib.suppress(psutil.Error):
        return " ".join(psutil.Process(pid).cmdline())
    return ""


def _running(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return process.status() != psutil.STATUS_ZOMBIE
    return False


def is_alive(pid: int, *markers: str) -> bool:
    """True when ``pid`` runs (not a zombie) and its command line contains every marker."""
    _reap(pid)
    try:
        process = psutil.Process(pid)
    except psutil.Error:
        return False
    return _running(process) and all(marker in command_line(pid) for marker in markers)


def wait_dead(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``pid`` to exit; True when it did."""
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def spawn(
    command: list[str], log_file: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session (signals reach its group only when we send them), appending its output
    to ``log_file``; ``env`` is added to this process's environment."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    rotate(log_file)
    with log_file.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def rotate(log_file: Path, limit: int = LOG_LIMIT_BYTES) -> None:
    """Keep one previous log: a log over ``limit`` bytes becomes ``<name>.1`` (replacing the one before) when its
    service starts again. A service that runs for weeks without a restart is not rotated (see docs/operations.md)."""
    with contextlib.suppress(FileNotFoundError):
        if log_file.stat().st_size > limit:
            log_file.replace(log_file.with_name(log_file.name + ".1"))


def live_pid(pid_file: Path, *markers: str, or_markers: tuple[str, ...] = ()) -> int | None:
    """The pid recorded in ``pid_file`` if that process is alive and matches ``markers`` (or, given, ``or_markers``:
    another command line that runs the same thing); a stale file is removed."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if is_alive(pid, *markers) or (or_markers and is_alive(pid, *or_markers)):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def group_members(group: int) -> list[psutil.Process]:
    """The running processes of process group ``group`` (none when no process leads or joined it)."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(process.pid) == group and _running(process):
                members.append(process)
    return members


def stop_process(pid: int, stop_signal: signal.Signals, timeout: float, name: str) -> None:
    """Stop ``pid`` and the process group it leads.

    ``stop_signal`` goes to ``pid`` alone: it stops its own children in order (the stream lets its batch commit,
    then stops its JVM), which a signal to the whole group would pre-empt. If it hangs past ``timeout`` the
    group is killed. Whatever of the group outlives it (a Dagster code server re-parented to init) then gets
    SIGTERM, and SIGKILL after :data:`GROUP_GRACE_S`.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, stop_signal)
    if not wait_dead(pid, timeout):
        log.warning("%s (pid %d) did not stop within %.0fs of %s; killing its process group",
                    name, pid, timeout, stop_signal.name)  # fmt: skip
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        wait_dead(pid, 10)
    _end_group(pid, name)


def _end_group(group: int, name: str) -> None:
    stragglers = group_members(group)
    if not stragglers:
        return
    for process in stragglers:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(stragglers, timeout=GROUP_GRACE_S)
    for process in [process for process in alive if _running(process)]:  # an exited orphan may linger as a zombie
        log.warning("%s: pid %d (%s) outlived it and ignored SIGTERM; killing it", name, process.pid,
                    command_line(process.pid)[:120])  # fmt: skip
        with contextlib.suppress(psutil.Error):
            process.kill()


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


@contextlib.contextmanager
def children_output_to(log_file: Path | None) -> Iterator[None]:
    """Processes started within inherit ``log_file`` as their stdout and stderr (a JVM's start-up noise goes to the
    log, not the terminal); this process's own are restored on exit. None: leave them as they are."""
    if log_file is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        for fd in saved:
            os.dup2(log.fileno(), fd)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
