"""The command line's answers to a new user's mistakes: one line naming the fix, at once, with an exit status that
scripts can use (the README's "When something goes wrong").

Each runs the installed ``smartcity`` command with a private var/. The fail-fast tests set the Kafka client's
timeout (300 s) far above the subprocess's own limit (60 s): a command that still waited on the network would fail
by timing out, with no wall-clock threshold in the test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest

from smartcity import ports
from smartcity.errors import ExitCode, PlatformError
from smartcity.kafka.admin import topic_offsets
from smartcity.processes import rotate
from smartcity.services import Service
from smartcity.settings import PROJECT_ROOT, Settings
from smartcity_ops.cli import cli
from smartcity_ops.services import services
from smartcity_ops.status import GoldState, freshness
from tests.conftest import SMARTCITY, run_cli, settings_from

SLOW_NETWORK = {"SMARTCITY_KAFKA_TIMEOUT_SECONDS": "300"}
LIMIT = 60.0
"""The subprocess limit of a command that must not wait on the network: far below SLOW_NETWORK's timeout."""

SWEPT: dict[str, tuple[str, ...]] = {
    "config": (),
    "status": (),
    "down": (),
    "kafka stop": (),
    "kafka status": (),
    "kafka tail": ("no_such_topic", "--idle-timeout", "1"),
    "simulate": ("--max-events", "5", "--no-progress"),
    "stream start": ("--available-now",),
    "stream stop": (),
    "stream status": (),
    "stream compact": (),
    "aws template": (),
    "aws plan": (),
    "aws apply": (),
    "aws destroy": ("--yes",),
    "aws cost": (),
    "aws testbed status": (),
    "aws testbed stop": (),
}
"""Every command run by the sweeps, with the arguments it needs."""
NOT_SWEPT = {
    "setup": "downloads jars",
    "clean": "deletes var/ (test_cli covers it)",
    "up": "starts every service (test_cli covers its refusals)",
    "run": "starts every service (test_cli covers its refusals)",
    "dashboard": "serves until stopped",
    "kafka start": "starts a broker (its busy port is tested below)",
    "aws testbed start": "starts servers (test_aws_* use it)",
    "aws testbed install": "downloads Trino",
}


def leaf_commands(group: click.Group = cli, prefix: str = "") -> set[str]:
    names = set()
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        names |= leaf_commands(command, f"{path} ") if isinstance(command, click.Group) else {path}
    return names


def sweep(environment: dict[str, str]) -> dict[str, subprocess.CompletedProcess]:
    """Every swept command in ``environment`` alone (no other SMARTCITY_* or AWS_* variable), a few at a time."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("SMARTCITY_", "AWS_"))}

    def one(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([SMARTCITY, *name.split(), *SWEPT[name]], env={**clean, **environment},
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(SWEPT, pool.map(one, SWEPT), strict=True))


def assert_one_line(name: str, result: subprocess.CompletedProcess, status: int, *expected: str) -> None:
    """The command failed with ``status`` and said so in one ``error:`` line holding ``expected``, no traceback."""
    shown = f"{name}: {result.returncode}\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
    assert result.returncode == status, shown
    assert "Traceback" not in result.stderr, shown
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and all(text in errors[0] for text in expected), shown


def test_the_sweeps_cover_every_command() -> None:
    assert set(SWEPT) | set(NOT_SWEPT) == leaf_commands()


def test_an_invalid_setting_is_one_line_and_status_78_from_every_command(private_environment: dict[str, str]) -> None:
    results = sweep({**private_environment, "SMARTCITY_KAFKA_PORT": "abc"})
    for name, result in results.items():
        assert_one_line(name, result, ExitCode.CONFIG, "SMARTCITY_KAFKA_PORT='abc' is invalid: not a whole number")


@pytest.mark.broker
def test_an_s3_lake_without_credentials_is_one_line_from_every_command(
    broker: Service, settings: Settings, tmp_path: Path
) -> None:
    """The broker answers (so the commands get as far as the lake), no AWS credentials anywhere."""
    (tmp_path / "var").mkdir()
    environment = {
        "SMARTCITY_VAR_DIR": str(tmp_path / "var"),
        "SMARTCITY_KAFKA_PORT": str(settings.kafka_port),
        "SMARTCITY_KAFKA_CONTROLLER_PORT": str(settings.kafka_controller_port),
        **{f"SMARTCITY_{stream.upper()}_TOPIC": f"absent_{stream}" for stream in settings.topics},  # nothing sent
        "SMARTCITY_LAKE_URI": "s3://smartcity-no-credentials/lake",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    results = sweep(environment)
    succeed = {"config", "down", "kafka stop", "stream stop", "aws template", "aws testbed status", "aws testbed stop"}
    for name in succeed:
        assert results[name].returncode == 0 and "Traceback" not in results[name].stderr, results[name].stderr
    credentials = ("no AWS credentials", "AWS_ACCESS_KEY_ID", "smartcity aws testbed start")
    for name in ("stream status", "stream start", "aws plan", "aws apply", "aws destroy", "aws cost"):
        assert_one_line(name, results[name], ExitCode.FAILURE, *credentials)
    assert_one_line("kafka tail", results["kafka tail"], ExitCode.FAILURE, "topic 'no_such_topic' does not exist")
    assert_one_line(
        "simulate", results["simulate"], ExitCode.FAILURE, "topic(s) absent_emergency, absent_gps", "do not exist"
    )
    assert_one_line("kafka status", results["kafka status"], ExitCode.FAILURE, "missing topic(s): absent_")
    assert_one_line("stream compact", results["stream compact"], ExitCode.FAILURE, "a local lake only")
    status = results["status"]
    assert status.returncode == ExitCode.DOWN and "Traceback" not in status.stderr, status.stderr  # none in this var/
    assert "\nstream\n  no AWS credentials (" in status.stdout, status.stdout


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (("stream", "status"), ""),
        (("kafka", "status"), ""),
        (("kafka", "tail", "no_such_topic"), ""),
        (("simulate", "--max-events", "5", "--no-progress"), ""),
        (("stream", "start", "--available-now"), "; gave up after 3 attempts"),
        (("stream", "start"), ""),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, tuple) else None,
)
def test_a_local_broker_that_does_not_run_is_named_at_once(
    command: tuple[str, ...], said: str, private_environment: dict[str, str]
) -> None:
    result = run_cli(*command, env={**private_environment, **SLOW_NETWORK}, timeout=LIMIT)
    address = f"127.0.0.1:{private_environment['SMARTCITY_KAFKA_PORT']}"
    assert_one_line(" ".join(command), result, ExitCode.UNAVAILABLE, f"no Kafka broker listens at {address}{said}",
                    "smartcity kafka start")  # fmt: skip
    assert not list(Path(private_environment["SMARTCITY_VAR_DIR"]).glob("run/*.pid")), "nothing left running"


def test_status_with_nothing_running_answers_at_once_with_status_4(private_environment: dict[str, str]) -> None:
    result = run_cli("status", env={**private_environment, **SLOW_NETWORK}, timeout=LIMIT)
    assert result.returncode == ExitCode.DOWN, result.stderr
    assert result.stdout.endswith("platform: not running (exit status 4)\n"), result.stdout
    assert result.stderr == "", result.stderr  # no log line leaks (a dbt parse, the Dagster instance)
    machine = run_cli("status", "--json", env={**private_environment, **SLOW_NETWORK}, timeout=LIMIT)
    state = json.loads(machine.stdout)
    assert machine.returncode == state["exit_code"] == ExitCode.DOWN and state["healthy"] is False
    assert {name: service["up"] for name, service in state["services"].items()} == dict.fromkeys(
        ("kafka", "simulator", "stream", "spark", "daemon", "dagster", "dashboard"), False
    )
    assert state["stream"]["problem"].startswith("no Kafka broker listens at 127.0.0.1:")
    assert state["newest_hour"] == dict.fromkeys(("ingestion", "catalog", "processed", "gold", "warehouse"))
    assert state["gold"]["newest_event"] is None and "does not exist yet" in state["gold"]["problem"]


@pytest.mark.broker
def test_status_with_only_the_broker_up_is_degraded(broker: Service) -> None:
    result = run_cli("status", timeout=LIMIT)
    assert result.returncode == ExitCode.DEGRADED, result.stdout + result.stderr
    assert "  kafka      up (pid" in result.stdout and "platform: degraded (exit status 3)" in result.stdout


def test_a_taken_port_names_its_process_before_anything_starts(private_environment: dict[str, str]) -> None:
    port = int(private_environment["SMARTCITY_KAFKA_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = run_cli("kafka", "start", env={**private_environment, **SLOW_NETWORK}, timeout=LIMIT)
    taken = f"port {port} on 127.0.0.1 is taken by pid {os.getpid()} ("  # the squatter is this process
    assert_one_line("kafka start", result, ExitCode.FAILURE, taken, "choose another port with SMARTCITY_KAFKA_PORT")
    assert not list(Path(private_environment["SMARTCITY_VAR_DIR"]).glob("run/*.pid"))


def test_a_listener_with_no_visible_owner_is_waited_for_then_named(
    private_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGKILLed broker's listening socket can outlive its pid for a moment, owned by no process anyone can see
    (CI saw this). Within the grace the port is waited for; after it, the message says the owner is invisible."""
    port = int(private_environment["SMARTCITY_KAFKA_PORT"])
    monkeypatch.setattr(ports, "listening_pids", lambda _port: [None])  # the kernel's view of a dying owner
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    with pytest.raises(PlatformError, match=rf"port {port} on 127.0.0.1 is taken by a process this user cannot see"):
        ports.require_free_port("127.0.0.1", port, "choose another port", grace=0.0)
    releaser = threading.Timer(0.5, squatter.close)
    releaser.start()
    ports.require_free_port("127.0.0.1", port, "choose another port", grace=60.0)  # returns once it is released
    releaser.join()


@pytest.mark.broker
def test_tail_says_where_it_waits_and_ctrl_c_ends_it_cleanly(broker: Service, settings: Settings) -> None:
    topic = settings.weather_topic
    ends = {row.partition: row.high for row in topic_offsets(settings) if row.topic == topic}
    tail = subprocess.Popen([SMARTCITY, "kafka", "tail", topic], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        said = tail.stderr.readline()
        tail.send_signal(signal.SIGINT)
        stdout, stderr = tail.communicate(timeout=LIMIT)
    finally:
        tail.kill()
    where = ", ".join(f"{partition}@{offset}" for partition, offset in sorted(ends.items()))
    assert said == f"waiting for new messages on {topic} (partition@offset: {where}); Ctrl-C stops\n"
    assert tail.returncode == 0, stderr
    assert stdout == "" and stderr == "0 message(s) shown\n" and "Aborted" not in stderr


def test_the_readme_documents_every_exit_status() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index("## When something goes wrong") :]
    documented = {int(code) for code in re.findall(r"^\| `(\d+)` \|", section, re.MULTILINE)}
    assert documented == {code.value for code in ExitCode}


def test_a_newest_event_ahead_of_the_clock_is_never_a_negative_age() -> None:
    ahead = freshness(GoldState("2026-12-02 10:12:30", -12.5))
    assert ahead == "newest event 2026-12-02 10:12:30 UTC (12.5 min ahead of this machine's clock)"
    assert freshness(GoldState("2026-12-02 10:12:30", 3.0)).endswith("(3.0 min old)")


def test_another_clusters_brokers_are_neither_started_nor_reported_as_ours(private_environment: dict[str, str]) -> None:
    port = private_environment["SMARTCITY_KAFKA_PORT"]
    ours = settings_from({**private_environment, "SMARTCITY_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"})
    assert "kafka" in [service.name for service in services(ours)]
    remote = {**private_environment, "SMARTCITY_KAFKA_BOOTSTRAP_SERVERS": "kafka-1.city.example:9092,kafka-2:9092"}
    assert "kafka" not in [service.name for service in services(settings_from(remote))]
    state = json.loads(run_cli("status", "--json", env=remote).stdout)
    assert "kafka" not in state["services"], state


def test_a_service_log_over_its_limit_is_kept_as_the_previous_one_at_the_next_start(tmp_path: Path) -> None:
    log = tmp_path / "stream.log"
    log.write_text("x" * 100)
    rotate(log, limit=200)
    assert log.read_text() == "x" * 100 and not (tmp_path / "stream.log.1").exists()
    rotate(log, limit=50)
    assert not log.exists() and (tmp_path / "stream.log.1").read_text() == "x" * 100
    log.write_text("y" * 100)
    rotate(log, limit=50)
    assert (tmp_path / "stream.log.1").read_text() == "y" * 100  # one previous log is kept, not more
