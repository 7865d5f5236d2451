"""The `smartcity` command: help on every subcommand, and the main job bringing services up and down."""

from __future__ import annotations

import contextlib
import importlib.metadata
import ipaddress
import json
import os
import pty
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import click
import psutil
import pytest
from click.testing import CliRunner

from dashboard.serve import dashboard_service
from dashboard.warehouse import NoData, query
from smartcity.kafka.broker import broker_service
from smartcity.settings import Settings
from smartcity_ops.cli import OPTIONAL_SERVICES, chosen, cli
from smartcity_ops.services import SERVICES, services
from tests.conftest import SMARTCITY, processes_of, run_cli, settings_from

COMPONENTS = ("kafka", "stream", "spark", "daemon", "dagster", "dashboard")


def all_command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            paths += all_command_paths(command, (*prefix, name))
        else:
            paths.append((*prefix, name))
    return paths


@pytest.mark.parametrize("path", all_command_paths(cli), ids=lambda p: " ".join(p) or "smartcity")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    assert len(result.output.splitlines()) > 3


@pytest.mark.parametrize("path", all_command_paths(cli), ids=lambda p: " ".join(p) or "smartcity")
def test_every_option_says_what_it_does(path: tuple[str, ...]) -> None:
    command = cli
    for name in path:
        command = command.commands[name]
    silent = [param.name for param in command.params if isinstance(param, click.Option) and not param.help]
    assert not silent, f"options without help: {silent}"


def test_version_is_the_installed_package_version() -> None:
    result = run_cli("--version")
    assert result.stdout == f"smartcity, version {importlib.metadata.version('smartcity-platform')}\n"


def test_up_and_run_leave_out_what_is_switched_off() -> None:
    assert chosen((), simulate=True, stream=False) == [name for name in OPTIONAL_SERVICES if name != "stream"]
    assert chosen((), simulate=False, stream=True) == [name for name in OPTIONAL_SERVICES if name != "simulator"]
    assert chosen(("stream", "dashboard"), simulate=True, stream=False) == ["dashboard"]
    for command in ("up", "run"):
        assert "--no-stream" in CliRunner().invoke(cli, [command, "--help"]).output


def clean(
    environment: dict[str, str], *args: str, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess:
    return subprocess.run([SMARTCITY, "clean", *args], env={**os.environ, **environment}, stdin=stdin,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_clean_asks_at_a_terminal_and_deletes_nothing_unless_told_yes(private_environment: dict[str, str]) -> None:
    var = Path(private_environment["SMARTCITY_VAR_DIR"])
    (var / "lake" / "raw").mkdir(parents=True)
    for answer, status, kept in (("n", 1, True), ("y", 0, False)):
        terminal, stdin = pty.openpty()
        try:
            os.write(terminal, f"{answer}\n".encode())
            result = clean(private_environment, stdin=stdin)
        finally:
            os.close(stdin)
            os.close(terminal)
        assert result.returncode == status, result.stderr
        assert f"Delete everything under {var.resolve()}" in result.stderr
        assert ("error: nothing deleted (answer y, or pass --yes)" in result.stderr) is kept, result.stderr
        assert (var / "lake").exists() is kept and (var / "jars").exists()


def test_down_stops_only_the_named_service_and_clean_refuses_while_one_runs(
    private_environment: dict[str, str],
) -> None:
    dashboard = dashboard_service(settings_from(private_environment))
    (Path(private_environment["SMARTCITY_VAR_DIR"]) / "lake").mkdir()
    dashboard.start()
    try:
        refused = clean(private_environment, "--yes")
        assert refused.returncode == 1 and "still running: dashboard" in refused.stderr, refused.stderr
        fresh = run_cli("run", "--fresh", "--yes", env=private_environment)
        assert fresh.returncode == 1 and "still running: dashboard" in fresh.stderr, fresh.stderr
        others = run_cli("down", "stream", "kafka", env=private_environment)
        assert others.stdout == "  stream     not running\n  kafka      not running\n" and dashboard.pid() is not None
        stopped = run_cli("down", "dashboard", env=private_environment)
        assert stopped.stdout == "  dashboard  stopped\n" and dashboard.pid() is None
    finally:
        dashboard.stop()
    wiped = clean(private_environment)  # stdin is not a terminal: nothing to ask
    assert wiped.returncode == 0 and "removed " in wiped.stdout and not (dashboard.paths.root / "lake").exists()


def test_help_works_even_with_a_bad_configuration() -> None:
    result = run_cli("kafka", "start", "--help", env={"SMARTCITY_PROFILE": "nope"})
    assert result.returncode == 0
    assert "Start the broker" in result.stdout


@pytest.mark.spark  # resolving the jars needs a JDK
def test_setup_is_idempotent() -> None:
    first, second = run_cli("setup"), run_cli("setup")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "spark-kafka:" in second.stdout and "kafka-broker:" in second.stdout


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.mark.e2e
@pytest.mark.usefixtures("jars")
@pytest.mark.timeout(900)
def test_run_brings_up_the_platform_loads_the_warehouse_then_stops_everything(
    private_environment: dict[str, str],
) -> None:
    settings = settings_from(private_environment)
    process = subprocess.Popen(
        [SMARTCITY, "run"],
        env={**os.environ, **private_environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line or process.poll() is None, "".join(output)
            output.append(line)
            if line.startswith("  logs "):  # the last line of the banner
                break
        assert any("platform is up" in line for line in output), "".join(output)
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.dashboard_port}/_stcore/health", timeout=10) as health:
            assert health.status == 200, "the dashboard is not serving"
        url = f"http://127.0.0.1:{settings.dagster_port}"
        assets = graphql(url, "{ assetNodes { assetKey { path } } }")["data"]["assetNodes"]
        groups = {node["assetKey"]["path"][0] for node in assets}
        assert groups == {"kafka", "raw", "quarantine", "catalog", "processed", "gold", "warehouse", "cost"}
        assert "simulator      real time" in "".join(output)
        vehicle_messages = 0
        while vehicle_messages == 0 and time.monotonic() < deadline:  # the simulator's events arrive
            status = run_cli("kafka", "status", env=private_environment)
            assert status.returncode == 0 and all(topic in status.stdout for topic in settings.topics.values())
            rows = [line.split() for line in status.stdout.splitlines() if line.startswith(settings.vehicle_topic)]
            vehicle_messages = sum(int(row[4]) for row in rows)
        assert vehicle_messages > 0
        landed = []
        while not landed and time.monotonic() < deadline:  # the stream lands them in the raw zone
            landed = list(Path(settings.lake).glob(f"raw/{settings.vehicle_topic}/*/*/part-b*.parquet"))
            time.sleep(1)
        assert landed, (settings.paths.logs / "stream.log").read_text()[-3000:]
        os.killpg(SERVICES["stream"](settings).pid(), signal.SIGKILL)  # the main job restarts a service that dies
        loaded = 0
        while not loaded and time.monotonic() < deadline:  # the sensor and automation carry it to the warehouse
            time.sleep(5)
            with contextlib.suppress(NoData):  # every gold table the overview reads (incidents may not have happened)
                query(settings.warehouse, "SELECT count(*) FROM gold.incident_events")
                loaded = min(
                    int(query(settings.warehouse, f"SELECT count(*) FROM gold.{table}").iat[0, 0])
                    for table in ("events_hourly", "fleet_hourly", "weather_hourly")
                )
        assert loaded, (settings.paths.logs / "daemon.log").read_text()[-5000:]
        status = run_cli("status", env=private_environment)
        assert status.returncode == 0, status.stderr
        for component in COMPONENTS:
            assert f"  {component:10s} up" in status.stdout, status.stdout
        assert "  warehouse  20" in status.stdout and "newest event" in status.stdout, status.stdout
        assert not exposed_listeners(settings), "every listener binds to loopback unless a setting says otherwise"
        running = processes_of(settings.var_dir)  # what must be gone after Ctrl-C, code servers included
        assert sum("dagster api grpc" in line for line in running) >= 2, running  # the UI's and the daemon's
    finally:
        process.send_signal(signal.SIGINT)
        remaining, _ = process.communicate(timeout=120)
    assert process.returncode == 0, "".join(output) + remaining
    assert "status: " in remaining and "stream lag" in remaining, remaining  # the live status line
    assert "stream exited unexpectedly (status -9" in remaining and "restarting it" in remaining, remaining
    assert broker_service(settings).pid() is None
    assert "simulation summary" in (settings.paths.logs / "simulator.log").read_text()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{settings.dagster_port}/server_info", timeout=5)
    assert processes_of(settings.var_dir) == [], "the platform left processes behind after Ctrl-C"


def loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


def exposed_listeners(settings: Settings) -> list[str]:
    """The listening sockets of the platform's processes (each service and all it started) not on loopback."""
    processes = []
    for service in services(settings):
        if (pid := service.pid()) is not None:
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                processes += [process, *process.children(recursive=True)]
    exposed = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            for socket_ in process.net_connections(kind="inet"):
                if socket_.status == psutil.CONN_LISTEN and not loopback(socket_.laddr.ip):
                    exposed.append(f"{process.pid} {' '.join(process.cmdline())[:100]} on {socket_.laddr}")
    return exposed


def _unwritable_var(environment: dict[str, str], root: Path) -> tuple[str, int]:
    (root / "a-file").write_text("not a directory")
    environment["SMARTCITY_VAR_DIR"] = str(root / "a-file" / "var")
    return "point SMARTCITY_VAR_DIR at a writable directory", 78


def _no_java(environment: dict[str, str], root: Path) -> tuple[str, int]:
    environment["SMARTCITY_JAVA_HOME"] = str(root / "no-jdk")
    return "Install a JDK 17 or newer", 1


def _taken_dashboard_port(environment: dict[str, str], root: Path) -> tuple[str, int]:
    return f"is taken by pid {os.getpid()} (", 1  # the squatter is this process


@pytest.mark.spark  # the checks run the machine's JDK
@pytest.mark.parametrize("fault", [_unwritable_var, _no_java, _taken_dashboard_port], ids=lambda f: f.__name__[1:])
def test_run_refuses_to_start_with_a_message_naming_the_fix(
    fault: Callable[[dict[str, str], Path], tuple[str, int]], private_environment: dict[str, str], tmp_path: Path
) -> None:
    environment = dict(private_environment)
    fix, status = fault(environment, tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(environment["SMARTCITY_DASHBOARD_PORT"])))
        squatter.listen()
        result = run_cli("run", env=environment, timeout=120)
    assert result.returncode == status, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and fix in result.stderr, result.stderr
    settings = settings_from(private_environment)
    assert broker_service(settings).pid() is None, "nothing may start before the checks pass"
    assert not list((settings.var_dir / "run").glob("*.pid"))


def test_status_with_nothing_running_says_down_and_none(private_environment: dict[str, str]) -> None:
    result = run_cli("status", env=private_environment)
    assert result.returncode == 4, result.stderr
    for component in COMPONENTS:
        assert f"  {component:10s} down" in result.stdout
    assert "  warehouse  none" in result.stdout
    assert "gold data\n  unknown (the warehouse file" in result.stdout


def test_clean_wipes_var_but_keeps_the_jars(private_environment: dict[str, str]) -> None:
    settings = settings_from(private_environment)
    (settings.var_dir / "lake" / "raw").mkdir(parents=True)
    (settings.var_dir / "warehouse.duckdb").write_text("old")
    result = clean(private_environment, "--yes")
    assert result.stdout == f"removed {settings.var_dir / 'lake'}\nremoved {settings.var_dir / 'warehouse.duckdb'}\n"
    assert sorted(path.name for path in settings.var_dir.iterdir()) == ["jars"]
