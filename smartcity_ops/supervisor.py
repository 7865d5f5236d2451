"""The main job: bring the platform's services up (in the foreground, or in the background with `up`), watch them,
and take them down.

The services are the Kafka broker (with its topics), the city simulator sending events in real time, the Spark
ingestion stream landing them in the lake, the Spark Connect server for the processing step, the Dagster daemon
(sensors, automation, run queue and monitoring) and webserver loading ``workspace.yaml``, and the Streamlit
dashboard. Each is described once, next to its own code (:class:`smartcity.services.Service`), and listed in
:mod:`smartcity_ops.services` in start order. Each logs to ``var/logs/<service>.log`` and records its pid in
``var/run/<service>.pid``, so `smartcity status`, `up` and `down` see it whoever started it.
"""

from __future__ import annotations

import logging
import shutil
import signal
import time
from pathlib import Path
from types import FrameType

from smartcity.errors import PlatformError
from smartcity.jars import resolve_all
from smartcity.java import find_java
from smartcity.services import Service, Started
from smartcity.settings import Settings
from smartcity_ops.services import services

log = logging.getLogger(__name__)

MAX_RESTARTS = 3
STATUS_EVERY_S = 30.0


def setup(settings: Settings) -> None:
    """What the services need before any starts: var/, the JVM jars, the dbt manifest (each done once)."""
    from smartcity_dagster.resources.dbt import prepare_dbt_project  # dbt's import is slow; only set-up needs it

    settings.paths.ensure()
    resolve_all(settings)
    prepare_dbt_project(settings)


def preflight(settings: Settings, names: list[str]) -> None:
    """Fail before starting anything: var/ writable, a usable Java, and free ports for services still to start."""
    settings.paths.ensure()
    find_java(settings.java_home)
    for service in services(settings, names):
        if service.pid() is None:
            service.check_ports()


def start(settings: Settings, names: list[str], started: dict[str, tuple[Service, Started]]) -> None:
    """Start the named services and the broker, recording each in ``started`` as it starts (so an interrupted
    start can stop those already running); return once every one is ready.

    A service is launched once those it needs are ready; the others start side by side and are awaited at the end.
    """
    ready: set[str] = set()

    def await_ready(name: str) -> None:
        if name in started and name not in ready:
            service, launched = started[name]
            service.await_ready(launched)
            ready.add(name)
            if not launched.already_running:
                log.info("%s ready", service.title)

    for service in services(settings, names):
        for need in service.needs:
            await_ready(need)
        started[service.name] = (service, service.start(wait=False))
        if not started[service.name][1].already_running:
            log.info("%s starting (log: %s)", service.title, service.log_file)
    for name in list(started):
        await_ready(name)


def up(settings: Settings, names: list[str]) -> dict[str, str]:
    """Start the broker and the named services in the background (each only if not already up); name → state."""
    preflight(settings, names)
    setup(settings)
    started: dict[str, tuple[Service, Started]] = {}
    start(settings, names, started)
    return {
        name: "already up" if launched.already_running else f"started (pid {launched.pid})"
        for name, (_, launched) in started.items()
    }


def down(settings: Settings, names: tuple[str, ...] = ()) -> dict[str, str]:
    """Stop the named services (all when none is) in reverse start order, each with its graceful signal and its
    process group; name → what it was."""
    stopping = [service for service in reversed(services(settings)) if not names or service.name in names]
    return {service.name: "not running" if service.stop() is None else "stopped" for service in stopping}


def run_platform(settings: Settings, names: list[str]) -> None:
    """Start the broker and the named services, print where to look, and keep running until interrupted; then stop
    what this run started."""
    preflight(settings, names)
    setup(settings)
    started: dict[str, tuple[Service, Started]] = {}

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        start(settings, names, started)
        print(banner(settings, names), flush=True)
        _watch(settings, started)
    except KeyboardInterrupt:
        log.info("stopping…")
    finally:
        for sig in previous:  # a second Ctrl-C must not abandon the services half stopped
            signal.signal(sig, _still_stopping)
        for service, launched in reversed(started.values()):
            if not launched.already_running:
                service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("stopped")


def _still_stopping(signum: int, _frame: FrameType | None) -> None:
    log.warning("%s ignored: still stopping the services (each is killed if it hangs)", signal.Signals(signum).name)


def _watch(settings: Settings, started: dict[str, tuple[Service, Started]]) -> None:
    """Print a status line every :data:`STATUS_EVERY_S`; restart a service this run started that dies (it resumes
    from its own state: the stream from its checkpoint, the daemon from its cursors), giving up after
    :data:`MAX_RESTARTS` of one service."""
    from smartcity_ops.status import status_line

    restarts = dict.fromkeys(started, 0)
    next_line = time.monotonic() + STATUS_EVERY_S
    while True:
        for name, (service, launched) in list(started.items()):
            if launched.process is None or (status := launched.process.poll()) is None:
                continue
            if restarts[name] == MAX_RESTARTS:
                raise PlatformError(f"{name} exited (status {status}) {MAX_RESTARTS + 1} times; see {service.log_file}")
            restarts[name] += 1
            print(f"{name} exited unexpectedly (status {status}; see {service.log_file}); restarting it", flush=True)
            started[name] = (service, service.start())
        if time.monotonic() >= next_line:
            print(f"status: {status_line(settings)}", flush=True)
            next_line = time.monotonic() + STATUS_EVERY_S
        time.sleep(1)


def wipe_runtime_state(settings: Settings) -> list[Path]:
    """Delete everything under var/ except the resolved jars, to start over; refuses while services run."""
    running = [service.name for service in services(settings) if service.pid() is not None]
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


def banner(settings: Settings, names: list[str]) -> str:
    """What runs where, in the order a user looks for it."""
    shown = ("dashboard", "dagster", "daemon", "kafka", "simulator", "stream", "spark")
    table = {service.name: service for service in services(settings)}
    lines = [f"  {table[name].title:14s} {table[name].summary if name in names or name == 'kafka' else 'off'}"
             if name in table else f"  {'Kafka':14s} {settings.bootstrap_servers}  (another cluster)"
             for name in shown]  # fmt: skip
    return (
        "\nsmart-city platform is up (Ctrl-C stops it)\n"
        + "\n".join(lines)
        + f"\n  {'logs':14s} {settings.paths.logs}\n"
    )
