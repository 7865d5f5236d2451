"""The main job: bring the platform's services up in the foreground and take them down on Ctrl-C.

Today that is the Kafka broker (with its topics) and Dagster (webserver and daemon via ``dagster dev``)
loading ``workspace.yaml``. Each service logs to ``var/logs/<component>.log``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from types import FrameType

from smartcity.errors import PlatformError
from smartcity.jars import resolve_all
from smartcity.kafka.broker import LocalBroker
from smartcity.ports import require_free_port
from smartcity.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)


def dagster_environment(settings: Settings) -> dict[str, str]:
    """Environment for Dagster processes: DAGSTER_HOME under var/, holding the project's dagster.yaml."""
    home = settings.paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, "DAGSTER_HOME": str(home)}


def dagster_url(settings: Settings) -> str:
    return f"http://{settings.dagster_host}:{settings.dagster_port}"


def start_dagster(settings: Settings) -> subprocess.Popen[bytes]:
    """Start ``dagster dev`` (webserver + daemon) in its own session, logging to var/logs/dagster.log."""
    require_free_port(settings.dagster_host, settings.dagster_port, "DAGSTER_PORT")
    command = [
        sys.executable, "-m", "dagster", "dev",
        "-w", str(PROJECT_ROOT / "workspace.yaml"),
        "--host", settings.dagster_host, "--port", str(settings.dagster_port),
    ]  # fmt: skip
    log_file = settings.paths.logs / "dagster.log"
    with log_file.open("ab") as out:
        return subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=dagster_environment(settings), stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float, log_name: str) -> None:
    """Wait until ``url`` answers, failing early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PlatformError(f"{log_name} exited with status {process.returncode}; see var/logs/{log_name}.log")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise PlatformError(f"{url} did not answer within {timeout:.0f}s; see var/logs/{log_name}.log")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGINT (Dagster's graceful shutdown), then SIGKILL to the whole group if it hangs."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_platform(settings: Settings) -> None:
    """Start the broker and Dagster, print where to look, and keep running until interrupted."""
    settings.paths.ensure()
    resolve_all(settings)
    broker = LocalBroker(settings)
    started = broker.start()
    log.info(
        "kafka broker %s on %s",
        "already running" if started.already_running else "started",
        settings.bootstrap_servers,
    )
    dagster: subprocess.Popen[bytes] | None = None

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        dagster = start_dagster(settings)
        wait_for_http(f"{dagster_url(settings)}/server_info", dagster, timeout=180, log_name="dagster")
        print(
            "\nsmart-city platform is up (Ctrl-C stops it)\n"
            f"  Dagster UI     {dagster_url(settings)}\n"
            f"  Kafka          {settings.bootstrap_servers}  (smartcity kafka status)\n"
            f"  logs           {settings.paths.logs}\n",
            flush=True,
        )
        dagster.wait()
        raise PlatformError("dagster exited unexpectedly; see var/logs/dagster.log")
    except KeyboardInterrupt:
        log.info("stopping…")
    finally:
        signal.signal(signal.SIGTERM, previous)
        if dagster is not None:
            stop_process(dagster)
        if not started.already_running:
            broker.stop()
        log.info("stopped")
