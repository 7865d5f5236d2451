"""The main job: bring the platform's services up in the foreground and take them down on Ctrl-C.

Today that is the Kafka broker (with its topics), the city simulator sending events in real time, the Spark
ingestion stream landing them in the lake, and Dagster (webserver and daemon via ``dagster dev``) loading
``workspace.yaml``. Each service logs to ``var/logs/<service>.log``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from smartcity.errors import PlatformError
from smartcity.jars import resolve_all
from smartcity.kafka.broker import LocalBroker
from smartcity.ports import require_free_port
from smartcity.processes import live_pid, spawn, wait_dead
from smartcity.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)


@dataclass
class Service:
    """A child process of the main job, in its own session so a terminal's Ctrl-C reaches it only through us."""

    name: str
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals = signal.SIGTERM

    def stop(self, timeout: float = 90.0) -> None:
        """The service's graceful-stop signal to its main process, then SIGKILL to the group if it hangs.

        Only the main process gets the graceful signal: it stops its own children in order (the stream lets its
        batch commit, then stops the JVM), which a signal to the whole group would pre-empt.
        """
        if self.process.poll() is not None:
            return
        os.kill(self.process.pid, self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return
        with contextlib.suppress(ProcessLookupError):  # stragglers of an orderly stop (e.g. Dagster's code server)
            os.killpg(self.process.pid, signal.SIGTERM)


def start_service(
    settings: Settings,
    name: str,
    command: list[str],
    env: dict[str, str] | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> Service:
    log_file = settings.paths.logs / f"{name}.log"
    process = spawn(command, log_file, env)
    log.info("%s started (pid %d), log: %s", name, process.pid, log_file)
    return Service(name, process, stop_signal)


def dagster_environment(settings: Settings) -> dict[str, str]:
    """Environment for Dagster processes: DAGSTER_HOME under var/, holding the project's dagster.yaml."""
    home = settings.paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, "DAGSTER_HOME": str(home)}


def dagster_url(settings: Settings) -> str:
    return f"http://{settings.dagster_host}:{settings.dagster_port}"


def start_dagster(settings: Settings) -> Service:
    """``dagster dev`` (webserver + daemon) on the configured address, returning once the UI answers."""
    require_free_port(settings.dagster_host, settings.dagster_port, "DAGSTER_PORT")
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    command += ["--host", settings.dagster_host, "--port", str(settings.dagster_port)]
    # `dagster dev` shuts its webserver and daemon down on Ctrl-C, i.e. SIGINT.
    service = start_service(settings, "dagster", command, dagster_environment(settings), signal.SIGINT)
    wait_for_http(f"{dagster_url(settings)}/server_info", service, timeout=180)
    return service


def start_simulator(settings: Settings) -> Service:
    """The city simulator in real time (default fleet), so data flows as soon as the platform is up."""
    command = [sys.executable, "-m", "smartcity", "simulate", "--speedup", "1", "--no-progress"]
    return start_service(settings, "simulator", command)


def start_stream(settings: Settings) -> Service:
    """The continuous ingestion stream (Kafka → raw zone + quarantine) as a child of the main job."""
    return start_service(settings, "stream", [sys.executable, "-m", "spark_streaming", "--mode", "continuous"])


def dashboard_url(settings: Settings) -> str:
    return f"http://{settings.dashboard_host}:{settings.dashboard_port}"


def dashboard_command(settings: Settings) -> list[str]:
    """Streamlit serving dashboard/app.py on the configured address, headless, without usage statistics."""
    return [
        sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "dashboard" / "app.py"),
        "--server.address", settings.dashboard_host, "--server.port", str(settings.dashboard_port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def start_dashboard(settings: Settings) -> Service:
    """The Streamlit dashboard, returning once its health endpoint answers."""
    require_free_port(settings.dashboard_host, settings.dashboard_port, "DASHBOARD_PORT")
    service = start_service(settings, "dashboard", dashboard_command(settings))
    wait_for_http(f"{dashboard_url(settings)}/_stcore/health", service, timeout=120)
    return service


def wait_for_http(url: str, service: Service, timeout: float) -> None:
    """Wait until ``url`` answers, failing early if the service exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            status = service.process.returncode
            raise PlatformError(f"{service.name} exited with status {status}; see var/logs/{service.name}.log")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise PlatformError(f"{url} did not answer within {timeout:.0f}s; see var/logs/{service.name}.log")


def _watch(settings: Settings, services: list[Service], every_s: float = 30.0) -> None:
    """Print a status line every ``every_s`` until a service exits (an error: they run until we stop them)."""
    from smartcity.status import status_line

    next_line = time.monotonic() + every_s
    while True:
        for service in services:
            if service.process.poll() is not None:
                raise PlatformError(
                    f"{service.name} exited unexpectedly (status {service.process.returncode}); "
                    f"see var/logs/{service.name}.log"
                )
        if time.monotonic() >= next_line:
            print(f"status: {status_line(settings)}", flush=True)
            next_line = time.monotonic() + every_s
        time.sleep(1)


def wipe_runtime_state(settings: Settings) -> list[Path]:
    """Delete everything under var/ except the resolved jars, to start over; refuses while services run."""
    from spark_streaming.control import running_pid

    if LocalBroker(settings).running_pid() or running_pid(settings):
        raise PlatformError(
            "the broker or the stream is still running: stop them first (Ctrl-C the running `smartcity run`, "
            "or `smartcity stream stop` and `smartcity kafka stop`)"
        )
    removed = [path for path in sorted(settings.var_dir.glob("*")) if path.name != "jars"]
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


# Background services of `smartcity up`: how to start each, what its command line contains, how to stop it.
BACKGROUND = {
    "simulator": (start_simulator, "simulate", signal.SIGTERM),
    "stream": (start_stream, "spark_streaming", signal.SIGTERM),
    "dagster": (start_dagster, "dagster", signal.SIGINT),
    "dashboard": (start_dashboard, "streamlit", signal.SIGTERM),
}


def _pid_file(settings: Settings, name: str) -> Path:
    return settings.paths.root / "run" / f"{name}.pid"


def up(settings: Settings, simulate: bool = True) -> dict[str, str]:
    """Start the broker and every service in the background (each only if not already up); name → state."""
    settings.paths.ensure()
    resolve_all(settings)
    started = LocalBroker(settings).start()
    states = {"kafka": "already up" if started.already_running else "started"}
    for name, (start, marker, _) in BACKGROUND.items():
        if name == "simulator" and not simulate:
            continue
        pid_file = _pid_file(settings, name)
        if live_pid(pid_file, marker):
            states[name] = "already up"
            continue
        service = start(settings)
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(str(service.process.pid))
        states[name] = f"started (pid {service.process.pid})"
    return states


def down(settings: Settings, timeout: float = 90.0) -> dict[str, str]:
    """Stop what `smartcity up` started, in reverse order, each with its graceful signal; name → state."""
    states = {}
    for name, (_, marker, stop_signal) in reversed(BACKGROUND.items()):
        pid = live_pid(_pid_file(settings, name), marker)
        if pid is None:
            states[name] = "not running"
            continue
        os.kill(pid, stop_signal)  # the main process stops its children in order (see Service.stop)
        if not wait_dead(pid, timeout):
            os.killpg(pid, signal.SIGKILL)
            wait_dead(pid, 10)
        _pid_file(settings, name).unlink(missing_ok=True)
        states[name] = "stopped"
    states["kafka"] = "stopped" if LocalBroker(settings).stop() else "not running"
    return states


def run_platform(settings: Settings, simulate: bool = True, stream: bool = True) -> None:
    """Start the broker and the services, print where to look, and keep running until interrupted."""
    settings.paths.ensure()
    resolve_all(settings)
    broker = LocalBroker(settings)
    started = broker.start()
    state = "already running" if started.already_running else "started"
    log.info("kafka broker %s on %s", state, settings.bootstrap_servers)
    services: list[Service] = []

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if simulate:
            services.append(start_simulator(settings))
        if stream:
            services.append(start_stream(settings))
        services.append(start_dagster(settings))
        services.append(start_dashboard(settings))
        print(
            "\nsmart-city platform is up (Ctrl-C stops it)\n"
            f"  dashboard      {dashboard_url(settings)}\n"
            f"  Dagster UI     {dagster_url(settings)}\n"
            f"  Kafka          {settings.bootstrap_servers}  (smartcity kafka status | smartcity kafka tail TOPIC)\n"
            f"  simulator      {'real time, default city' if simulate else 'off'}\n"
            f"  stream         {'Kafka → ' + settings.lake + ' (smartcity stream status)' if stream else 'off'}\n"
            f"  logs           {settings.paths.logs}\n",
            flush=True,
        )
        _watch(settings, services)
    except KeyboardInterrupt:
        log.info("stopping…")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for service in reversed(services):
            service.stop()
        if not started.already_running:
            broker.stop()
        log.info("stopped")
