"""The ingestion stream end to end: real broker, real Spark, real Parquet, read back by DuckDB with a plain glob."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyspark
import pytest

from smartcity.jars import SPARK_KAFKA, classpath
from smartcity.services import Service
from smartcity.settings import PROJECT_ROOT, Settings
from smartcity_dagster.definitions import build_definitions
from spark_streaming.control import stream_service
from spark_streaming.paths import StreamPaths
from tests.conftest import SMARTCITY, run_cli, settings_from
from tests.graph import run_graph, sensor_hours
from tests.pipeline import (
    FAULTS,
    MALFORMED,
    assert_exactly_once,
    drain,
    lake_contents,
    ledger_rows,
    simulate,
    stop_stream,
    stream_environment,
    wait_for_batches,
)
from tests.spark_cluster import SparkCluster

pytestmark = [pytest.mark.broker, pytest.mark.usefixtures("jars")]


@pytest.fixture(scope="module")
def drained(broker: Service, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A seeded run with every fault kind, drained by available-now in batches of at most 8,000 records."""
    root = tmp_path_factory.mktemp("drained")
    environment = stream_environment(settings, root, SMARTCITY_STREAM_MAX_OFFSETS_PER_TRIGGER="8000")
    ledger = root / "ledger.csv"
    # hours in the past, so that every event (incidents resolve up to hours later) falls in an existing partition
    start = (datetime.now(UTC) - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%S")
    scenario = ["--seed", "8", "--start", start, "--max-events", "30000", "--incidents-per-hour", "600"]
    simulate(environment, ledger, *scenario, *FAULTS)
    output = drain(environment)
    return {"environment": environment, "rows": ledger_rows(ledger), "drain": output}


def test_every_acknowledged_record_lands_once_and_bad_ones_are_quarantined_with_their_reason(drained: dict) -> None:
    raw, quarantine = assert_exactly_once(drained["environment"], drained["rows"])
    by_position = {(r["topic"], int(r["partition"]), int(r["offset"])): r for r in drained["rows"]}
    assert {by_position[row[:3]]["fault"] for row in quarantine} == MALFORMED
    for row in quarantine:
        assert row[3] == by_position[row[:3]]["fault"]  # the reason names the fault the simulator injected
    duplicates = [r for r in drained["rows"] if r["fault"] == "duplicate"]
    assert duplicates and len(raw) - len({row[3] for row in raw}) == len(duplicates)  # kept for the ETL to dedupe


def test_a_drain_prints_each_batch_and_the_total_and_keeps_the_jvm_in_its_log(drained: dict) -> None:
    drain = drained["drain"]
    rows = drained["rows"]
    batches = re.findall(r"^batch (\d+): ([\d,]+) records: ([\d,]+) raw, ([\d,]+) quarantined", drain.stdout, re.M)
    assert len(batches) >= 4, drain.stdout  # 30,000 records at most 8,000 per batch
    records, raw, quarantined = (sum(int(batch[i].replace(",", "")) for batch in batches) for i in (1, 2, 3))
    malformed = Counter(r["fault"] for r in rows if r["valid"] == "false")
    assert (records, raw, quarantined) == (len(rows), len(rows) - malformed.total(), malformed.total())
    total = drain.stdout.splitlines()[-1]
    by_reason = ", ".join(f"{reason} {count:,}" for reason, count in sorted(malformed.items()))
    assert total.startswith(f"{len(batches)} batch(es) committed, {records:,} records: {raw:,} raw, "
                            f"{quarantined:,} quarantined ({by_reason}), in "), total  # fmt: skip
    for noise in ("WARN", "py4j", "Closing down clientserver", "batch 0:"):  # the JVM's, and logs repeating stdout
        assert noise not in drain.stderr, drain.stderr
    log = (Path(drained["environment"]["SMARTCITY_VAR_DIR"]) / "logs" / "stream.log").read_text()
    assert "WARN" in log  # the JVM's start-up warnings went to the log file instead


def test_quarantine_keeps_the_payload_and_where_it_came_from(drained: dict) -> None:
    lake = Path(settings_from(drained["environment"]).lake)
    rows = duckdb.sql(
        f"select reason, reason_detail, raw_text, raw_bytes, kafka_key, ingest_time "
        f"from read_parquet('{lake}/quarantine/*/*/*/*.parquet')"
    ).fetchall()
    for reason, detail, text, payload, key, ingest_time in rows:
        assert detail and payload and key and ingest_time
        assert (text is None) == (reason == "invalid_utf8")


def test_raw_zone_is_partitioned_by_event_hour_with_kafka_metadata(drained: dict) -> None:
    lake = Path(settings_from(drained["environment"]).lake)
    rows = duckdb.sql(
        "select event_time, event_date, event_hour, kafka_timestamp, ingest_time "
        f"from read_parquet('{lake}/raw/*/*/*/*.parquet', hive_partitioning = true, union_by_name = true)"
    ).fetchall()
    for event_time, event_date, event_hour, kafka_timestamp, ingest_time in rows:
        assert event_time.strftime("%Y-%m-%d") == str(event_date) and event_time.hour == int(event_hour)
        assert kafka_timestamp is not None and ingest_time is not None
    assert all(path.name.startswith("part-b") for path in lake.glob("raw/*/*/*/*"))


def test_status_shows_no_lag_and_the_quarantine_counts(drained: dict) -> None:
    result = run_cli("stream", "status", env=drained["environment"])
    assert result.returncode == 0, result.stderr
    assert "total lag: 0" in result.stdout
    malformed = sum(1 for r in drained["rows"] if r["valid"] == "false")
    quarantined = [line.split() for line in result.stdout.splitlines() if line.startswith("quarantined")]
    assert sum(int(parts[-1]) for parts in quarantined) == malformed


def test_compaction_keeps_every_row_and_leaves_one_file_per_hour(drained: dict) -> None:
    before = [sorted(rows) for rows in lake_contents(drained["environment"])]
    result = run_cli("stream", "compact", env=drained["environment"])
    assert result.returncode == 0, result.stderr
    assert [sorted(rows) for rows in lake_contents(drained["environment"])] == before
    lake = Path(settings_from(drained["environment"]).lake)
    hours = [*lake.glob("raw/*/*/*"), *lake.glob("quarantine/*/*/*")]
    assert any(hour.parts[-4] == "quarantine" for hour in hours)
    for hour in hours:
        assert len(list(hour.glob("*.parquet"))) == 1, hour


def test_a_checkpoint_for_another_query_is_refused(drained: dict) -> None:
    changed = {**drained["environment"], "SMARTCITY_WEATHER_TOPIC": drained["environment"]["SMARTCITY_GPS_TOPIC"]}
    result = run_cli("stream", "start", "--available-now", env=changed)
    assert result.returncode == 1
    assert "belongs to a different query (changed: topics" in result.stderr


def test_unreachable_broker_gives_up_with_a_clear_error(private_environment: dict[str, str]) -> None:
    result = run_cli("stream", "start", "--available-now", env=private_environment)
    assert result.returncode == 69
    assert "no Kafka broker listens" in result.stderr and "gave up after 3 attempts" in result.stderr


def test_a_missing_topic_gives_up_with_a_clear_error(broker: Service, settings: Settings, tmp_path: Path) -> None:
    environment = {**stream_environment(settings, tmp_path), "SMARTCITY_GPS_TOPIC": f"missing_{tmp_path.name}"}
    result = run_cli("stream", "start", "--available-now", env=environment)
    assert result.returncode == 1
    assert f"topic(s) missing_{tmp_path.name} do not exist" in result.stderr and "gave up after 3" in result.stderr


def test_a_new_checkpoint_over_a_published_lake_is_refused(drained: dict, tmp_path: Path) -> None:
    fresh = {**drained["environment"], "SMARTCITY_CHECKPOINT_URI": str(tmp_path / "new-checkpoints")}
    result = run_cli("stream", "start", "--available-now", env=fresh)
    assert result.returncode == 1
    assert "is new, but the lake" in result.stderr and "published batch(es) of another checkpoint" in result.stderr


def test_a_stop_during_a_backlog_commits_the_running_batch_and_a_restart_resumes(
    broker: Service, settings: Settings, tmp_path: Path
) -> None:
    environment = stream_environment(
        settings, tmp_path, SMARTCITY_STREAM_TRIGGER_SECONDS="1", SMARTCITY_STREAM_MAX_OFFSETS_PER_TRIGGER="1000"
    )
    checkpoint = StreamPaths.of(settings_from(environment)).checkpoint
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    simulate(environment, first, "--seed", "1", "--max-events", "40000")  # a backlog of about 40 batches
    started = run_cli("stream", "start", env=environment)
    assert started.returncode == 0, started.stderr
    try:
        wait_for_batches(environment, 1)
        twice = run_cli("stream", "start", "--available-now", env=environment)
        assert twice.returncode == 1 and "a stream already runs" in twice.stderr
        running = max(int(path.name) for path in (checkpoint / "offsets").iterdir() if path.name.isdigit())
        stopped = run_cli("stream", "stop", env=environment)
        assert stopped.returncode == 0 and "stream stopped" in stopped.stdout, stopped.stderr
    finally:
        stop_stream(environment)
    assert (checkpoint / "commits" / str(running)).exists(), "the batch running at the stop did not commit"
    status = run_cli("stream", "status", env=environment)
    lag = int(next(line for line in status.stdout.splitlines() if line.startswith("total lag:")).split(":")[1])
    assert lag > 0, "the stop waited for the whole backlog instead of the running batch"
    simulate(environment, second, "--seed", "2", "--max-events", "5000")
    drain(environment)
    assert_exactly_once(environment, ledger_rows(first, second))


def test_a_stream_started_by_hand_is_the_running_stream_for_every_command(
    broker: Service, settings: Settings, tmp_path: Path
) -> None:
    """A foreground stream in a terminal owns the checkpoint: a background start (as `run` and `up` do) reuses it
    instead of starting a second query on the same checkpoint, and `stream stop` stops it cleanly."""
    environment = stream_environment(settings, tmp_path)
    simulate(environment, tmp_path / "ledger.csv", "--seed", "3", "--max-events", "2000")
    by_hand = subprocess.Popen([SMARTCITY, "stream", "start", "--foreground"], env={**os.environ, **environment},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip  # a shell's job: it leads its process group
    try:
        wait_for_batches(environment, 0)
        again = run_cli("stream", "start", env=environment)
        assert again.returncode == 0 and f"stream already running (pid {by_hand.pid})" in again.stdout, again
        service = stream_service(settings_from(environment))
        assert service.pid() == by_hand.pid
        service.pid_file.unlink()  # a lost pid file: the stream's lock still keeps a second query off the checkpoint
        drain_too = [sys.executable, "-m", "spark_streaming", "--mode", "available-now"]
        second = subprocess.run(drain_too, env={**os.environ, **environment}, capture_output=True, text=True)
        assert second.returncode == 1 and "a stream already runs (it holds var/run/stream.lock)" in second.stderr, (
            second.stderr
        )
        service.pid_file.write_text(str(by_hand.pid))
        stopped = run_cli("stream", "stop", env=environment)
        assert stopped.returncode == 0 and f"stream stopped (pid {by_hand.pid})" in stopped.stdout, stopped
        out, err = by_hand.communicate(timeout=60)
    finally:
        if by_hand.poll() is None:
            os.killpg(by_hand.pid, signal.SIGKILL)
    assert by_hand.returncode == 0, err
    assert "batch 0: " in out and "batch(es) committed, 2,000 records" in out, out


def running_batch(checkpoint: Path) -> int | None:
    """The batch Spark has planned (``offsets/N``) but not committed (``commits/N``), if one runs."""
    planned = {int(path.name) for path in (checkpoint / "offsets").glob("[0-9]*")}
    committed = {int(path.name) for path in (checkpoint / "commits").glob("[0-9]*")}
    return max(planned - committed, default=None)


def test_on_a_standalone_cluster_a_worker_killed_during_a_batch_loses_and_duplicates_nothing(
    broker: Service, settings: Settings, spark_standalone: SparkCluster, tmp_path: Path
) -> None:
    """The cluster entry point: spark-submit to the standalone master (its master wins over ours), the stream's
    executors on two workers; one worker and its executor are SIGKILLed while a batch runs, the batch's tasks run
    again on the other, and every acknowledged record is in the lake once."""
    environment = stream_environment(settings, tmp_path, SMARTCITY_STREAM_TRIGGER_SECONDS="2")
    checkpoint = StreamPaths.of(settings_from(environment)).checkpoint
    ledger = tmp_path / "ledger.csv"
    jars = ",".join(str(jar) for jar in classpath(settings, SPARK_KAFKA))
    submit = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--master", spark_standalone.master_url,
              "--total-executor-cores", "2", "--jars", jars, "spark_streaming/__main__.py"]  # fmt: skip
    driver_log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen(submit, env={**os.environ, **environment, "PYSPARK_PYTHON": sys.executable,
                                           "SPARK_LOCAL_IP": "127.0.0.1"},
                              cwd=PROJECT_ROOT, stdout=driver_log, stderr=subprocess.STDOUT)  # fmt: skip
    simulator = None
    try:
        wait_for_batches(environment, 0)  # an empty first batch: executors are up before the sending starts
        simulator = subprocess.Popen(
            [SMARTCITY, "simulate", "--speedup", "0", "--rate", "300", "--max-events", "30000", "--seed", "5",
             "--ledger", str(ledger), "--no-progress", *FAULTS],
            env={**os.environ, **environment}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_for_batches(environment, 1)
        deadline = time.monotonic() + 120
        while (killed_in := running_batch(checkpoint)) is None:
            assert time.monotonic() < deadline and driver.poll() is None, "no batch ran to kill a worker in"
            time.sleep(0.05)
        os.killpg(spark_standalone.services[1].pid(), signal.SIGKILL)  # worker 0 and the executor it launched
        wait_for_batches(environment, killed_in + 2)  # the stream goes on with one worker
        assert (checkpoint / "commits" / str(killed_in)).exists()
        _, err = simulator.communicate(timeout=300)
        assert simulator.returncode == 0, err[-3000:]
        stopped = run_cli("stream", "stop", env=environment)
        assert stopped.returncode == 0 and "stream stopped" in stopped.stdout, stopped.stderr
        assert driver.wait(timeout=120) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    finally:
        for process in (simulator, driver):
            if process is not None and process.poll() is None:
                process.kill()
        driver_log.close()
    apps = spark_standalone.state()["completedapps"] + spark_standalone.state()["activeapps"]
    assert "smartcity-raw-ingest" in {app["name"] for app in apps}, "spark-submit's master ran the stream"
    assert list(spark_standalone.work_dirs[0].glob("app-*/*")), "the killed worker had run one of its executors"
    drain(environment)  # what arrived after the last batch, on a local session
    assert_exactly_once(environment, ledger_rows(ledger))


def test_sigkill_three_times_during_200k_events_loses_and_duplicates_nothing(
    broker: Service, settings: Settings, tmp_path: Path
) -> None:
    environment = stream_environment(
        settings, tmp_path, SMARTCITY_STREAM_TRIGGER_SECONDS="1", SMARTCITY_STREAM_MAX_OFFSETS_PER_TRIGGER="20000"
    )
    ledger = tmp_path / "ledger.csv"
    producer = subprocess.Popen(
        [SMARTCITY, "simulate", "--speedup", "0", "--rate", "5000", "--max-events", "200000", "--seed", "77",
         "--ledger", str(ledger), "--no-progress", *FAULTS],
        env={**os.environ, **environment}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    chance = random.Random(2026)
    pid_file = stream_service(settings_from(environment)).pid_file
    kills = 0
    try:
        for _ in range(3):
            started = run_cli("stream", "start", env=environment)
            assert started.returncode == 0, started.stderr
            if kills == 0:
                wait_for_batches(environment, 0)
            time.sleep(chance.uniform(3, 12))  # a random moment, usually mid-batch
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            kills += 1
            time.sleep(1)
    finally:
        stop_stream(environment)
        _, errors = producer.communicate(timeout=600)
    assert producer.returncode == 0, errors
    assert kills == 3
    drain(environment)
    raw, _ = assert_exactly_once(environment, ledger_rows(ledger))
    assert len(raw) > 180_000
    lake = Path(settings_from(environment).lake)
    for file in lake.glob("*/*/**/*.parquet"):  # every file any reader can list is readable
        duckdb.sql(f"select count(*) from read_parquet('{file}')").fetchone()


def test_the_dagster_graph_reconciles_the_drained_run_with_the_ledger(drained: dict) -> None:
    """Kafka → stream → lake sensor → one backfill run over every hour it requests → warehouse = the ledger."""
    settings = settings_from(drained["environment"])
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        hours = sensor_hours(defs, instance)
        result = run_graph(defs, instance, hours[0], hours[-1])
    assert result.success
    fleet = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["warehouse", "fleet_hourly"]]
    assert {e.partition for e in fleet} >= set(hours), "one run materializes every hour of the backfill"
    valid: dict[str, set[str]] = {}
    for row in drained["rows"]:
        if row["valid"] == "true":
            valid.setdefault(row["topic"], set()).add(row["event_id"])
    expected = {stream: len(valid.get(topic, set())) for stream, topic in settings.topics.items()}
    with duckdb.connect() as db:
        db.execute(f"ATTACH '{settings.paths.catalog}' AS glue (READ_ONLY)")
        processed = {s: db.execute(f"SELECT count(*) FROM glue.processed.{s}").fetchone()[0] for s in expected}
        db.execute(f"ATTACH '{settings.var_dir / 'warehouse.duckdb'}' AS dw (READ_ONLY)")
        totals = db.execute(
            "SELECT (SELECT sum(events) FROM dw.gold.fleet_hourly), (SELECT sum(reports) FROM dw.gold.traffic_hourly), "
            "(SELECT sum(readings) FROM dw.gold.weather_hourly), "
            "(SELECT sum(reported + dispatched + resolved) FROM dw.gold.incidents_hourly), "
            "(SELECT sum(events) FROM dw.gold.vehicle_trips)"
        ).fetchone()
    assert processed == expected
    assert totals == (expected["vehicle"], expected["traffic"], expected["weather"], expected["emergency"],
                      expected["vehicle"])  # fmt: skip
