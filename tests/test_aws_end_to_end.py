"""The stream with its lake on S3: a real S3 API on loopback, Spark writing through S3A, the same commit
protocol with server-side copies instead of renames, read back by DuckDB with a plain ``s3://`` glob."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from smartcity.jars import SPARK_S3, resolve
from smartcity.object_store import storage_for
from smartcity.services import Service
from smartcity.settings import Settings
from spark_streaming.control import stream_service
from spark_streaming.lake import Lake
from tests.conftest import run_cli, s3_lake_environment, settings_from, unencrypted_objects
from tests.pipeline import (
    FAULTS,
    MALFORMED,
    assert_exactly_once,
    drain,
    ledger_rows,
    simulate,
    stop_stream,
    stream_environment,
    wait_for_batches,
)

pytestmark = [pytest.mark.broker, pytest.mark.usefixtures("jars")]


def test_a_stream_killed_twice_publishes_every_record_once_to_s3_encrypted(
    broker: Service, settings: Settings, s3_endpoint: str, tmp_path: Path
) -> None:
    environment = stream_environment(
        settings,
        tmp_path,
        **s3_lake_environment(s3_endpoint),
        SMARTCITY_STREAM_TRIGGER_SECONDS="1",
        SMARTCITY_STREAM_MAX_OFFSETS_PER_TRIGGER="3000",
    )
    s3_settings = settings_from(environment)
    resolve(s3_settings, SPARK_S3)  # once per machine, outside the stream's start-up timeout
    ledger = tmp_path / "ledger.csv"
    simulate(environment, ledger, "--seed", "31", "--max-events", "30000", *FAULTS)
    chance, pid_file = random.Random(31), stream_service(s3_settings).pid_file
    try:
        for kill in range(2):  # SIGKILL at a random moment while it works through the backlog
            started = run_cli("stream", "start", env=environment)
            assert started.returncode == 0, started.stderr
            wait_for_batches(environment, 2 * kill)
            time.sleep(chance.uniform(0.5, 4))
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            time.sleep(1)
    finally:
        stop_stream(environment)
    drain(environment)

    rows = ledger_rows(ledger)
    _, quarantine = assert_exactly_once(environment, rows)  # DuckDB over s3://…/raw/*/*/*/*.parquet
    assert {row[3] for row in quarantine} == MALFORMED
    lake = Lake(storage_for(s3_settings.lake, s3_settings))
    assert lake.storage.list_files(lake.staging) == [], "staging debris left behind"
    assert unencrypted_objects(lake.storage) == [], "objects not encrypted at rest"
    log = (s3_settings.paths.logs / "stream.log").read_text()
    assert "the lake is on S3, where hours are not compacted" in log and "up to 3600 per hour at a trigger of 1s" in log
    status = run_cli("stream", "status", env=environment)
    assert status.returncode == 0, status.stderr
    assert "total lag: 0" in status.stdout
    quarantined = [line.split() for line in status.stdout.splitlines() if line.startswith("quarantined")]
    assert sum(int(parts[-1]) for parts in quarantined) == len(quarantine)
