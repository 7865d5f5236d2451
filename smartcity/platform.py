"""The main job: bring the platform's services up in the foreground and take them down on Ctrl-C.

That is the Kafka broker (with its topics), the city simulator sending events in real time, the Spark ingestion
stream landing them in the lake, the Dagster daemon (sensors, automation, run queue and monitoring) and webserver
loading ``workspace.yaml``, and the Streamlit dashboard. Each service logs to ``var/logs/<service>.log`` and
records its pid in ``var/run/<service>.pid``, so `smartcity status` and `smartcity up` see it whoever started it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from smartcity.errors import PlatformError
from smartcity.jars import resolve_all
from smartcity.java import find_java
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
    pid_file: Path
    stop_signal: signal.Signals = signal.SIGTERM

    def stop(self, timeout: float = 90.0) -> None:
        """The service's graceful-stop signal to its main process, then SIGKILL to the group if it hangs.

        Only the main process gets the graceful signal: it stops its own children in order (the stream lets its
        batch commit, then stops the JVM), which a signal to the whole group would pre-empt.
        """
        if self.process.poll() is None:
            stop_process(self.process.pid, self.stop_signal, timeout)
            self.process.wait()
        self.pid_file.unlink(missing_ok=True)


def stop_process(pid: int, stop_signal: signal.Signals, timeout: float) -> None:
    """``stop_signal`` to ``pid``; SIGKILL to its group if it hangs, SIGTERM to stragglers of an orderly stop."""
    os.kill(pid, stop_signal)
    if not wait_dead(pid, timeout):
        log.warning("pid %d did not stop within %.0fs of %s; killing its group", pid, timeout, stop_signal.name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        wait_dead(pid, 10)
        return
    with contextlib.suppress(ProcessLookupError):  # e.g. Dagster's code server, left by an orderly stop
        os.killpg(pid, signal.SIGTERM)


def start_service(settings: Settings, name: str, command: list[str], env: dict[str, str] | None = None) -> Service:
    log_file = settings.paths.logs / f"{name}.log"
    process = spawn(command, log_file, env)
    pid_file = _pid_file(settings, name)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(process.pid))
    log.info("%s started (pid %d), log: %s", name, process.pid, log_file)
    return Service(name, process, pid_file, STOP_SIGNALS.get(name, signal.SIGTERM))


def _pid_file(settings: Settings, name: str) -> Path:
    return settings.paths.root / "run" / f"{name}.pid"


def dagster_environment(settings: Settings) -> dict[str, str]:
    """Environment for Dagster processes: DAGSTER_HOME under var/, holding the project's dagster.yaml.

    The instance's SQLite storage is created here, in one process: the daemon and the webserver starting
    together on a fresh home both created it, and two alembic stamps made every later open of the instance fail
    ("more than one head present").
    """
    import dagster as dg  # here, so commands without Dagster do not pay for importing it

    home = settings.paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # creating or checking the schema is not news
    with dg.DagsterInstance.from_config(str(home)):
        pass
    return {**os.environ, "DAGSTER_HOME": str(home)}


def dagster_url(settings: Settings) -> str:
    return f"http://{settings.dagster_host}:{settings.dagster_port}"


WORKSPACE = str(PROJECT_ROOT / "workspace.yaml")
SPARK_CONNECT_HOST = "127.0.0.1"  # loopback only: whoever reaches the server can run Spark jobs on the lake
PORT_GRACE_S = 10.0  # a server restarted after a crash may find its port not yet released


def _script(name: str) -> str:
    """A console script installed beside this interpreter (the project's virtual environment)."""
    return str(Path(sys.executable).with_name(name))


def start_daemon(settings: Settings) -> Service:
    """The Dagster daemon: sensors, declarative automation, the run queue, run monitoring and retries.

    Its own service (not ``dagster dev``), so it can crash, be restarted and be watched on its own.
    """
    command = [_script("dagster-daemon"), "run", "-w", WORKSPACE]
    return start_service(settings, "daemon", command, dagster_environment(settings))


def start_dagster(settings: Settings) -> Service:
    """The Dagster webserver (the UI) on the configured address, returning once it answers."""
    require_free_port(settings.dagster_host, settings.dagster_port, "DAGSTER_PORT", grace=PORT_GRACE_S)
    command = [_script("dagster-webserver"), "-w", WORKSPACE]
    command += ["--host", settings.dagster_host, "--port", str(settings.dagster_port)]
    service = start_service(settings, "dagster", command, dagster_environment(settings))
    wait_for(lambda: answers(f"{dagster_url(settings)}/server_info"), service, timeout=180)
    return service


def start_simulator(settings: Settings) -> Service:
    """The city simulator in real time (SMARTCITY_SIMULATOR_VEHICLES), so data flows as soon as the platform is up."""
    command = [sys.executable, "-m", "smartcity", "simulate", "--speedup", "1", "--no-progress"]
    command += ["--vehicles", str(settings.simulator_vehicles)]
    return start_service(settings, "simulator", command)


def start_stream(settings: Settings) -> Service:
    """The continuous ingestion stream (Kafka → raw zone + quarantine) as a child of the main job."""
    return start_service(settings, "stream", [sys.executable, "-m", "spark_streaming", "--mode", "continuous"])


def start_spark(settings: Settings) -> Service:
    """The Spark Connect server the processing step of every Dagster run uses, returning once it listens.

    A run's processing then needs no JVM of its own (see smartcity_dagster/spark_connect.py).
    """
    require_free_port(SPARK_CONNECT_HOST, settings.spark_connect_port, "SPARK_CONNECT_PORT", grace=PORT_GRACE_S)
    service = start_service(settings, "spark", [sys.executable, "-m", "smartcity_dagster.spark_connect"])
    wait_for(lambda: _listens(SPARK_CONNECT_HOST, settings.spark_connect_port), service, timeout=180)
    return service


def spark_connect_address(settings: Settings) -> str:
    return f"{SPARK_CONNECT_HOST}:{settings.spark_connect_port}"


def _listens(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2):
        return True
    return False


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
    require_free_port(settings.dashboard_host, settings.dashboard_port, "DASHBOARD_PORT", grace=PORT_GRACE_S)
    service = start_service(settings, "dashboard", dashboard_command(settings))
    wait_for(lambda: answers(f"{dashboard_url(settings)}/_stcore/health"), service, timeout=120)
    return service


def answers(url: str) -> bool:
    """True when ``url`` answers HTTP (any status but an error)."""
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
        return True
    return False


def wait_for(ready: Callable[[], bool], service: Service, timeout: float) -> None:
    """Wait until ``ready()``, failing early if the service exits; a service that never gets ready is stopped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            status = service.process.returncode
            raise PlatformError(f"{service.name} exited with status {status}; see var/logs/{service.name}.log")
        if ready():
            return
        time.sleep(1)
    service.stop()
    raise PlatformError(f"{service.name} was not ready within {timeout:.0f}s; see var/logs/{service.name}.log")


MAX_RESTARTS = 3


def _watch(settings: Settings, services: list[Service], every_s: float = 30.0) -> None:
    """Print a status line every ``every_s``; restart a service that dies (it resumes from its own state: the
    stream from its checkpoint, the daemon from its cursors), giving up after ``MAX_RESTARTS`` of one service."""
    from smartcity.status import status_line

    restarts = dict.fromkeys((service.name for service in services), 0)
    next_line = time.monotonic() + every_s
    while True:
        for index, service in enumerate(services):
            if service.process.poll() is None:
                continue
            status, log_file = service.process.returncode, settings.paths.logs / f"{service.name}.log"
            if restarts[service.name] == MAX_RESTARTS:
                raise PlatformError(f"{service.name} exited (status {status}) {MAX_RESTARTS + 1} times; see {log_file}")
            restarts[service.name] += 1
            print(f"{service.name} exited unexpectedly (status {status}; see {log_file}); restarting it", flush=True)
            services[index] = SERVICES[service.name][0](settings)
        if time.monotonic() >= next_line:
            print(f"status: {status_line(settings)}", flush=True)
            next_line = time.monotonic() + every_s
        time.sleep(1)


def wipe_runtime_state(settings: Settings) -> list[Path]:
    """Delete everything under var/ except the resolved jars, to start over; refuses while services run."""
    from spark_streaming.control import running_pid

    running = [name for name in SERVICES if service_pid(settings, name) is not None]
    if "stream" not in running and running_pid(settings) is not None:  # started by `smartcity stream start`
        running.append("stream")
    if LocalBroker(settings).running_pid() is not None:
        running.append("kafka")
    if running:
        raise PlatformError(
            f"still running: {', '.join(running)}. Stop them first (Ctrl-C the running `smartcity run`, or "
            "`smartcity down`)"
        )
    removed = [path for path in sorted(settings.var_dir.glob("*")) if path.name != "jars"]
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return removed


# Services in start order: how to start each and what its command line contains (to trust a pid file).
SERVICES = {
    "simulator": (start_simulator, "simulate"),
    "stream": (start_stream, "spark_streaming"),
    "spark": (start_spark, "smartcity_dagster.spark_connect"),
    "daemon": (start_daemon, "dagster-daemon"),
    "dagster": (start_dagster, "dagster-webserver"),
    "dashboard": (start_dashboard, "streamlit"),
}
STOP_SIGNALS = {"daemon": signal.SIGINT, "dagster": signal.SIGINT}  # Dagster stops its code servers on Ctrl-C


def service_pid(settings: Settings, name: str) -> int | None:
    """The pid of service ``name`` if it runs (started by `smartcity up` or `smartcity run`)."""
    return live_pid(_pid_file(settings, name), SERVICES[name][1])


def preflight(settings: Settings, names: list[str]) -> None:
    """Fail before starting anything: var/ writable, a usable Java, and the ports of services still to start.

    (The broker checks its own ports, allowing a just-killed broker time to release them.)
    """
    settings.paths.ensure()
    find_java(settings.java_home)
    ports = {"dagster": (settings.dagster_host, settings.dagster_port, "DAGSTER_PORT"),
             "dashboard": (settings.dashboard_host, settings.dashboard_port, "DASHBOARD_PORT"),
             "spark": (SPARK_CONNECT_HOST, settings.spark_connect_port, "SPARK_CONNECT_PORT")}  # fmt: skip
    for name in names:
        if name in ports and service_pid(settings, name) is None:
            require_free_port(*ports[name])


def up(settings: Settings, names: list[str]) -> dict[str, str]:
    """Start the broker and the named services in the background (each only if not already up); name → state."""
    preflight(settings, names)
    resolve_all(settings)
    started = LocalBroker(settings).start()
    states = {"kafka": "already up" if started.already_running else "started"}
    for name in [name for name in SERVICES if name in names]:
        if service_pid(settings, name) is not None:
            states[name] = "already up"
            continue
        service = SERVICES[name][0](settings)
        states[name] = f"started (pid {service.process.pid})"
    return states


def down(settings: Settings, timeout: float = 90.0) -> dict[str, str]:
    """Stop every running service in reverse start order, each with its graceful signal, then the broker."""
    states = {}
    for name in reversed(SERVICES):
        pid = service_pid(settings, name)
        if pid is None:
            states[name] = "not running"
            continue
        stop_process(pid, STOP_SIGNALS.get(name, signal.SIGTERM), timeout)
        _pid_file(settings, name).unlink(missing_ok=True)
        states[name] = "stopped"
    states["kafka"] = "stopped" if LocalBroker(settings).stop() else "not running"
    return states


def run_platform(settings: Settings, names: list[str]) -> None:
    """Start the broker and the named services, print where to look, and keep running until interrupted."""
    preflight(settings, names)
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
        for name in [name for name in SERVICES if name in names]:  # one by one: a Ctrl-C here stops those started
            services.append(SERVICES[name][0](settings))
        print(banner(settings, names), flush=True)
        _watch(settings, services)
    except KeyboardInterrupt:
        log.info("stopping…")
    finally:
        for sig in previous:  # a second Ctrl-C must not abandon the services half stopped
            signal.signal(sig, _still_stopping)
        for service in reversed(services):
            service.stop()
        if not started.already_running:
            broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("stopped")


def _still_stopping(signum: int, _frame: FrameType | None) -> None:
    log.warning("%s ignored: still stopping the services (each is killed if it hangs)", signal.Signals(signum).name)


def banner(settings: Settings, names: list[str]) -> str:
    def off_unless(name: str, text: str) -> str:
        return text if name in names else "off"

    return (
        "\nsmart-city platform is up (Ctrl-C stops it)\n"
        f"  dashboard      {off_unless('dashboard', dashboard_url(settings))}\n"
        f"  Dagster UI     {off_unless('dagster', dagster_url(settings))}\n"
        f"  Dagster daemon {off_unless('daemon', 'sensors and automation running')}\n"
        f"  Kafka          {settings.bootstrap_servers}  (smartcity kafka status | smartcity kafka tail TOPIC)\n"
        f"  simulator      {off_unless('simulator', f'real time, {settings.simulator_vehicles} vehicles')}\n"
        f"  stream         {off_unless('stream', f'Kafka → {settings.lake} (smartcity stream status)')}\n"
        f"  Spark          {off_unless('spark', f'Connect server on {spark_connect_address(settings)}')}\n"
        f"  logs           {settings.paths.logs}\n"
    )
