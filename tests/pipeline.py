"""Driving the real pipeline in tests: private topics on the session's broker, the simulator, the stream."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from dashboard.warehouse import NoData, WarehouseUnavailable, query
from smartcity.duckdb_s3 import enable_s3
from smartcity.kafka.admin import ensure_topics
from smartcity.settings import Settings
from spark_streaming.control import stream_service
from tests.conftest import isolated_environment, run_cli, settings_from

MALFORMED = {"invalid_json", "wrong_type", "missing_field", "out_of_range", "invalid_utf8", "oversized"}
FAULTS = ["--malformed-rate", "0.06", "--duplicate-rate", "0.01", "--late-rate", "0.01", "--out-of-order-rate", "0.01"]


def stream_environment(settings: Settings, root: Path, **extra: str) -> dict[str, str]:
    """A private var/, lake and checkpoint, and fresh topics on the session's broker."""
    environment = isolated_environment(root / "var")
    prefix = f"st{uuid.uuid4().hex[:8]}_"
    topics = {f"SMARTCITY_{stream.upper()}_TOPIC": f"{prefix}{topic}" for stream, topic in settings.topics.items()}
    environment.update(topics, SMARTCITY_KAFKA_BOOTSTRAP_SERVERS=settings.bootstrap_servers, **extra)
    ensure_topics(settings_from(environment))
    return environment


def simulate(environment: dict[str, str], ledger: Path, *args: str) -> None:
    result = run_cli("simulate", "--speedup", "0", "--ledger", str(ledger), "--no-progress", *args, env=environment)
    assert result.returncode == 0, result.stderr


def drain(environment: dict[str, str]) -> subprocess.CompletedProcess:
    result = run_cli("stream", "start", "--available-now", env=environment, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def lake_reader(settings: Settings) -> tuple[duckdb.DuckDBPyConnection, str]:
    """A DuckDB connection that reads the lake with plain globs, and the lake's root as DuckDB names it: a local
    directory, or ``s3://bucket/prefix`` through the httpfs extension (as the aws profile's checks read it)."""
    connection = duckdb.connect()
    if not settings.lake_on_s3:
        return connection, str(Path(settings.lake).resolve())
    enable_s3(connection, settings.aws_region, settings.s3_endpoint_url)
    return connection, settings.lake.replace("s3a://", "s3://", 1)


def lake_contents(environment: dict[str, str]) -> tuple[list[tuple], list[tuple]]:
    """(topic, partition, offset, event_id) of raw rows and (topic, partition, offset, reason) of quarantined ones,
    read the way any file-listing reader would: a plain glob over the zones."""
    connection, root = lake_reader(settings_from(environment))
    raw = connection.sql(
        "select kafka_topic, kafka_partition, kafka_offset, event_id "
        f"from read_parquet('{root}/raw/*/*/*/*.parquet', union_by_name = true)"
    ).fetchall()
    try:
        quarantine = connection.sql(
            "select kafka_topic, kafka_partition, kafka_offset, reason "
            f"from read_parquet('{root}/quarantine/*/*/*/*.parquet')"
        ).fetchall()
    except duckdb.IOException as exc:
        if "No files found" not in str(exc):
            raise
        quarantine = []
    return raw, quarantine


def assert_exactly_once(environment: dict[str, str], rows: list[dict[str, str]]) -> tuple[list[tuple], list[tuple]]:
    """Every acknowledged record is in the lake exactly once by (topic, partition, offset): valid ones in raw."""
    raw, quarantine = lake_contents(environment)
    positions = [row[:3] for row in raw] + [row[:3] for row in quarantine]
    assert len(positions) == len(set(positions)), "a Kafka record landed twice"
    expected = {(r["topic"], int(r["partition"]), int(r["offset"])) for r in rows}
    assert set(positions) == expected, (
        f"missing {len(expected - set(positions))}, extra {len(set(positions) - expected)}"
    )
    valid = {(r["topic"], int(r["partition"]), int(r["offset"])) for r in rows if r["valid"] == "true"}
    assert {row[:3] for row in raw} == valid
    return raw, quarantine


def wait_for_batches(environment: dict[str, str], minimum: int, timeout: float = 300) -> int:
    """Wait until the background stream has published batch ``minimum`` or a later one; return the latest."""
    heartbeat = Path(environment["SMARTCITY_VAR_DIR"]) / "stream" / "heartbeat.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = json.loads(heartbeat.read_text()).get("last_batch") if heartbeat.exists() else None
        if last is not None and last >= minimum:
            return last
        time.sleep(0.5)
    raise AssertionError(f"no batch {minimum} within {timeout}s")


def stop_stream(environment: dict[str, str]) -> None:
    pid_file = stream_service(settings_from(environment)).pid_file
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def ledger_rows(*ledgers: Path) -> list[dict[str, str]]:
    rows = []
    for ledger in ledgers:
        with ledger.open() as handle:
            rows += list(csv.DictReader(handle))
    return rows


def dry_run_events(path: Path, acknowledged: set[str], topics: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Valid, acknowledged events of the dry run per stream, deduplicated on event_id, with typed event_time."""
    stream_of = {topic: stream for stream, topic in topics.items()}
    rows: dict[str, list[dict]] = {stream: [] for stream in topics}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["valid"] and record["event_id"] in acknowledged:
            rows[stream_of[record["topic"]]].append(json.loads(record["value"]))
    frames = {}
    for stream, events in rows.items():
        frame = pd.DataFrame(events).drop_duplicates("event_id")
        frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
        frame["hour_start"] = frame["event_time"].dt.floor("h").dt.tz_localize(None)
        frames[stream] = frame
    return frames


def events_per_stream_and_hour(events: dict[str, pd.DataFrame]) -> dict[tuple[str, datetime], int]:
    return {
        (stream, hour.to_pydatetime()): count
        for stream, frame in events.items()
        for hour, count in frame.groupby("hour_start").size().items()
    }


def quarantined_per_stream_and_reason(rows: list[dict[str, str]], topics: dict[str, str]) -> dict[tuple[str, str], int]:
    """Malformed records the broker acknowledged, per stream and the fault injected (the reason expected)."""
    stream_of = {topic: stream for stream, topic in topics.items()}
    return dict(Counter((stream_of[row["topic"]], row["fault"]) for row in rows if row["valid"] == "false"))


def loaded_quarantine(url: str) -> dict[tuple[str, str], int]:
    """Quarantined records per stream and reason in the warehouse (empty while it has none)."""
    with contextlib.suppress(NoData, WarehouseUnavailable):
        sql = "SELECT stream, reason, sum(records) AS n FROM gold.quarantine_hourly GROUP BY ALL"
        return {(r.stream, r.reason): r.n for r in query(url, sql).itertuples()}
    return {}
