"""The aws profile end to end on the test bed: seeded simulator events with every fault kind → the real broker →
the stream, SIGKILLed twice, landing on S3 (SeaweedFS, with the bucket policy: TLS only, encrypted puts only)
through S3A → the lake sensor listing S3 → the Glue Data Catalog (moto) → processed on S3 → gold built on Trino
(in the place of Athena) → the warehouse. Every acknowledged record lands exactly once, and the warehouse holds the
numbers computed independently from the simulator's dry run of the same seed, as the local profile's end-to-end
test does."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dashboard.warehouse import query
from smartcity.jars import SPARK_S3, resolve
from smartcity.object_store import storage_for
from smartcity.services import Service
from smartcity.settings import Settings
from smartcity_aws.deploy import Deployment
from smartcity_aws.testbed import Testbed
from spark_streaming.control import stream_service
from spark_streaming.lake import Lake
from tests.conftest import run_cli, settings_from, unencrypted_objects
from tests.pipeline import (
    FAULTS,
    MALFORMED,
    assert_exactly_once,
    drain,
    dry_run_events,
    events_per_stream_and_hour,
    ledger_rows,
    loaded_quarantine,
    quarantined_per_stream_and_reason,
    simulate,
    stop_stream,
    stream_environment,
    wait_for_batches,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("jars")]
GRAPH = """
import sys
import dagster as dg
from smartcity.settings import load_settings
from smartcity_dagster.definitions import build_definitions
from tests.graph import run_graph, sensor_hours

defs = build_definitions(load_settings())
with dg.instance_for_test() as instance:
    hours = sensor_hours(defs, instance)
    assert run_graph(defs, instance, hours[0], hours[-1]).success
"""


@pytest.mark.timeout(1200)
def test_the_aws_profile_lands_processes_and_loads_every_event_once(
    broker: Service,
    settings: Settings,
    on_testbed: dict[str, str],
    aws_testbed: Testbed,
    trino_starting: Service,
    tmp_path: Path,
) -> None:
    platform = aws_testbed.platform_environment()
    bucket = platform["SMARTCITY_LAKE_URI"].split("/")[2]
    Deployment(settings_from({**on_testbed, **platform})).apply()  # policy on the bucket
    lake = {
        "SMARTCITY_LAKE_URI": f"s3://{bucket}/e2e-{uuid.uuid4().hex[:8]}",
        "SMARTCITY_TRINO_URL": platform["SMARTCITY_TRINO_URL"],
    }
    environment = stream_environment(settings, tmp_path, **{**on_testbed, **lake}, SMARTCITY_STREAM_TRIGGER_SECONDS="1",
                                     SMARTCITY_STREAM_MAX_OFFSETS_PER_TRIGGER="3000")  # fmt: skip
    ours = settings_from(environment)
    resolve(ours, SPARK_S3)  # once per machine, outside the stream's start-up timeout
    start = (datetime.now(UTC) - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%S")
    scenario = ["--seed", "31", "--start", start, "--max-events", "20000", "--incidents-per-hour", "300", *FAULTS]
    dry = tmp_path / "events.jsonl"
    assert run_cli("simulate", "--no-progress", "--dry-run", str(dry), *scenario, env=environment).returncode == 0
    ledger = tmp_path / "ledger.csv"
    simulate(environment, ledger, *scenario)
    chance, pid_file = random.Random(31), stream_service(ours).pid_file
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
    status = run_cli("stream", "status", env=environment)
    assert status.returncode == 0 and "total lag: 0" in status.stdout, status.stdout + status.stderr

    trino_starting.start()  # Athena's engine for gold; it started with the test
    graph = subprocess.run([sys.executable, "-c", GRAPH], env={**os.environ, **environment}, capture_output=True,
                           text=True, timeout=900)  # fmt: skip
    assert graph.returncode == 0, graph.stdout[-3000:] + graph.stderr[-5000:]
    acknowledged = {row["event_id"] for row in rows if row["valid"] == "true"}
    events = dry_run_events(dry, acknowledged, ours.topics)
    loaded = query(ours.warehouse, "SELECT stream, hour_start, events FROM gold.events_hourly")
    assert {(r.stream, r.hour_start.to_pydatetime()): r.events for r in loaded.itertuples()} == (
        events_per_stream_and_hour(events)
    )
    assert loaded_quarantine(ours.warehouse) == quarantined_per_stream_and_reason(rows, ours.topics)

    landed = Lake(storage_for(ours.lake, ours))
    assert landed.storage.list_files(landed.staging) == [], "staging debris left behind"
    assert unencrypted_objects(landed.storage) == [], "objects not encrypted at rest"
    log = (ours.paths.logs / "stream.log").read_text()
    assert "the lake is on S3" in log and "up to 3600 per hour at a trigger of 1s" in log
