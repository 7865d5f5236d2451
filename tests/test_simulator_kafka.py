"""The simulator against the real broker: the acknowledged ledger, failures, and clean interruption."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from smartcity.kafka.admin import consume, ensure_topics
from smartcity.kafka.broker import broker_service
from smartcity.services import Service
from smartcity.settings import Settings
from tests.conftest import SMARTCITY, run_cli, settings_from

pytestmark = [pytest.mark.broker, pytest.mark.usefixtures("jars")]


def private_topics(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """Fresh topic names for one test, created on the broker, as settings and as environment variables."""
    prefix = f"sim{uuid.uuid4().hex[:8]}_"
    names = {f"{stream}_topic": f"{prefix}{topic}" for stream, topic in settings.topics.items()}
    scoped = settings.model_copy(update=names)
    ensure_topics(scoped)
    return scoped, {f"SMARTCITY_{key.upper()}": value for key, value in names.items()}


def read_ledger(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def summary_value(output: str, label: str) -> int:
    match = re.search(rf"^\s+{label}\s+([\d,]+)", output, re.MULTILINE)
    assert match, output
    return int(match.group(1).replace(",", ""))


def test_ledger_equals_what_a_consumer_reads_back(broker: Service, settings: Settings, tmp_path: Path) -> None:
    scoped, env = private_topics(settings)
    ledger = tmp_path / "ledger.csv"
    result = run_cli(
        "simulate",
        "--seed",
        "21",
        "--speedup",
        "0",
        "--max-events",
        "20000",
        "--incidents-per-hour",
        "600",
        "--malformed-rate",
        "0.06",
        "--duplicate-rate",
        "0.01",
        "--late-rate",
        "0.01",
        "--out-of-order-rate",
        "0.01",
        "--ledger",
        str(ledger),
        "--no-progress",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    rows = read_ledger(ledger)
    assert summary_value(result.stdout, "acknowledged") == summary_value(result.stdout, "sent") == len(rows)
    assert summary_value(result.stdout, "failed") == 0

    expected = {(row["topic"], int(row["partition"]), int(row["offset"])): row for row in rows}
    received = {}
    for topic in scoped.topics.values():
        for message in consume(scoped, topic, from_beginning=True, idle_timeout=3):
            received[(message.topic(), message.partition(), message.offset())] = message.value()
    assert received.keys() == expected.keys()
    for position, value in received.items():
        row = expected[position]
        assert (row["event_id"].encode() in value) or row["fault"] == "invalid_json"
        if row["valid"] == "true":
            assert json.loads(value)["event_id"] == row["event_id"]
    faults = {row["fault"] for row in rows}
    assert faults == {
        "",
        "invalid_json",
        "wrong_type",
        "missing_field",
        "out_of_range",
        "invalid_utf8",
        "oversized",
        "duplicate",
        "late",
        "out_of_order",
    }
    valid_ids = [row["event_id"] for row in rows if row["valid"] == "true"]
    assert len(valid_ids) - len(set(valid_ids)) == sum(1 for row in rows if row["fault"] == "duplicate")


def test_keys_are_device_ids_so_each_device_stays_in_one_partition(broker: Service, settings: Settings) -> None:
    scoped, env = private_topics(settings)
    result = run_cli("simulate", "--seed", "4", "--speedup", "0", "--max-events", "3000", "--no-progress", env=env)
    assert result.returncode == 0, result.stderr
    partitions: dict[str, set[int]] = {}
    for message in consume(scoped, scoped.vehicle_topic, from_beginning=True, idle_timeout=3):
        assert json.loads(message.value())["device_id"] == message.key().decode()
        partitions.setdefault(message.key().decode(), set()).add(message.partition())
    assert len(partitions) == 50 and all(len(p) == 1 for p in partitions.values())


def test_broker_down_at_start_fails_fast(private_environment: dict[str, str]) -> None:
    # A client timeout far beyond the subprocess's own limit: only knowing the local broker is down can answer.
    environment = {**private_environment, "SMARTCITY_KAFKA_TIMEOUT_SECONDS": "300"}
    result = run_cli("simulate", "--max-events", "10", "--no-progress", env=environment, timeout=60)
    assert result.returncode == 69
    assert "no Kafka broker listens" in result.stderr and "smartcity kafka start" in result.stderr


def test_missing_topic_is_named(broker: Service) -> None:
    result = run_cli("simulate", "--max-events", "10", "--no-progress", env={"SMARTCITY_GPS_TOPIC": "no_gps_here"})
    assert result.returncode == 1
    assert "topic(s) no_gps_here do not exist" in result.stderr


def test_broker_stopped_mid_run_counts_failures_and_exits_non_zero(
    private_environment: dict[str, str], tmp_path: Path
) -> None:
    local = broker_service(settings_from(private_environment))
    local.start()
    ledger = tmp_path / "ledger.csv"
    process = subprocess.Popen(
        [
            SMARTCITY,
            "simulate",
            "--speedup",
            "0",
            "--rate",
            "2000",
            "--duration",
            "120",
            "--delivery-timeout",
            "5",
            "--ledger",
            str(ledger),
            "--no-progress",
        ],
        env={**os.environ, **private_environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(6)
        local.stop()
        stdout, stderr = process.communicate(timeout=90)
    finally:
        process.kill()
        local.stop()
    assert process.returncode == 1, stderr
    acknowledged, failed = summary_value(stdout, "acknowledged"), summary_value(stdout, "failed")
    assert acknowledged > 1000 and failed > 0
    assert len(read_ledger(ledger)) == acknowledged
    assert summary_value(stdout, "sent") == acknowledged + failed


def test_sigint_flushes_and_prints_the_summary(broker: Service, settings: Settings, tmp_path: Path) -> None:
    _, env = private_topics(settings)
    ledger = tmp_path / "ledger.csv"
    process = subprocess.Popen(
        [SMARTCITY, "simulate", "--speedup", "1", "--ledger", str(ledger), "--no-progress"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "interrupted" in stdout
    assert summary_value(stdout, "sent") == summary_value(stdout, "acknowledged") == len(read_ledger(ledger)) > 100
