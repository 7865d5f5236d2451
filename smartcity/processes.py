"""Process checks shared by the services the platform starts in the background (broker, stream)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time


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
