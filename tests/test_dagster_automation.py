"""The lake sensor and declarative automation, against a persistent test instance and a fixture lake."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator.lake_fixture import write_raw_fixture
from smartcity.lake_layout import Hour
from smartcity.settings import Settings
from smartcity_dagster.definitions import build_definitions
from smartcity_dagster.partitions import contiguous_ranges
from smartcity_dagster.sensors import HourUpdate, range_request
from smartcity_dagster.watchdog import fail_runs_with_dead_workers
from tests.conftest import isolated_environment, settings_from


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A fixture lake whose events span two recent hours."""
    settings = settings_from(isolated_environment(tmp_path_factory.mktemp("automation") / "var"))
    start = datetime.now(UTC).replace(minute=59, second=20, microsecond=0) - timedelta(hours=3)
    counts = write_raw_fixture(Path(settings.lake), settings.topics, seed=5, start=start, max_events=8_000)
    hours = sorted({Hour.of_directory(day, hour) for (_, day, hour) in counts})
    return {"settings": settings, "defs": build_definitions(settings), "hours": hours, "counts": counts}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def tick(lake: dict, instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    sensor = lake["defs"].get_sensor_def("raw_lake_sensor")
    resources = {"lake": lake["defs"].resources["lake"]}
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return sensor(context)


def requested(result: dg.SensorResult) -> list[tuple[str, str]]:
    """The hour ranges requested, (first, last) of each run."""
    ranges = [request.partition_key_range for request in result.run_requests or []]
    return sorted((r.start, r.end) for r in ranges if r is not None)


def add_batch(settings: Settings, stream: str, hour: Hour, batch: int) -> None:
    """Publish one more file into an hour, as a later stream batch would (copying an existing file's rows)."""
    directory = Path(settings.lake) / "raw" / settings.topics[stream] / hour.relative_dir
    source = sorted(directory.glob("*.parquet"))[0]
    shutil.copy(source, directory / f"part-b{batch:012d}.parquet")


def test_new_files_request_their_hours_and_record_raw_materializations(
    lake: dict, instance: dg.DagsterInstance
) -> None:
    result = tick(lake, instance, None)
    assert len(lake["hours"]) > 1
    assert requested(result) == [(lake["hours"][0].key, lake["hours"][-1].key)], "consecutive hours: one run"
    rows = {(e.asset_key.path[-1], e.partition): e.metadata["new_rows"].value for e in result.asset_events}
    expected = {(stream, Hour.of_directory(day, hour).key): n for (stream, day, hour), n in lake["counts"].items()}
    assert rows == expected


def test_hours_are_grouped_into_consecutive_ranges() -> None:
    first = Hour.of_key("2026-03-01-22:00")
    hours = [Hour(first.start + timedelta(hours=n)) for n in (3, 0, 1, 2, 5, 5, 9, 10)]
    keys = [(a.key, b.key) for a, b in contiguous_ranges(hours)]
    assert keys == [("2026-03-01-22:00", "2026-03-02-01:00"), ("2026-03-02-03:00",) * 2,
                    ("2026-03-02-07:00", "2026-03-02-08:00")]  # fmt: skip


def test_no_new_files_skip(lake: dict, instance: dg.DagsterInstance) -> None:
    first = tick(lake, instance, None)
    second = tick(lake, instance, first.cursor)
    assert not second.run_requests and second.skip_reason
    assert json.loads(second.cursor) == json.loads(first.cursor)


def test_late_files_request_the_old_hour_again_and_a_restart_neither_misses_nor_repeats(
    lake: dict, instance: dg.DagsterInstance
) -> None:
    cursor = tick(lake, instance, None).cursor
    old = lake["hours"][0]
    add_batch(lake["settings"], "vehicle", old, batch=41)
    # a fresh sensor evaluation from the stored cursor is what the daemon does after a restart
    late = tick(lake, instance, cursor)
    assert requested(late) == [(old.key, old.key)]
    assert [e.metadata["new_files"].value for e in late.asset_events] == [1]
    assert tick(lake, instance, late.cursor).run_requests in (None, [])


def test_an_hour_with_a_queued_run_gets_no_second_one_but_its_neighbour_does(
    lake: dict, instance: dg.DagsterInstance
) -> None:
    cursor = tick(lake, instance, None).cursor
    waiting, other = lake["hours"][0], lake["hours"][-1]
    range_tags = {"dagster/asset_partition_range_start": waiting.key, "dagster/asset_partition_range_end": waiting.key}
    tags = {"dagster/sensor_name": "raw_lake_sensor", **range_tags}
    instance.create_run_for_job(noop_job(), status=dg.DagsterRunStatus.NOT_STARTED, tags=tags)  # not yet dequeued
    add_batch(lake["settings"], "vehicle", waiting, batch=51)
    add_batch(lake["settings"], "vehicle", other, batch=52)
    result = tick(lake, instance, cursor)
    assert requested(result) == [(other.key, other.key)], "the queued run reads the new file when it starts"
    assert {e.partition for e in result.asset_events} == {waiting.key, other.key}, "both hours' data is recorded"
    assert not tick(lake, instance, result.cursor).run_requests


def test_compaction_of_seen_batches_requests_nothing(lake: dict, instance: dg.DagsterInstance) -> None:
    cursor = tick(lake, instance, None).cursor
    hour = lake["hours"][-1]
    directory = Path(lake["settings"].lake) / "raw" / lake["settings"].topics["gps"] / hour.relative_dir
    files = sorted(directory.glob("*.parquet"))
    newest = max(int(f.name[6:18]) for f in files)
    pq.write_table(pa.concat_tables([pq.read_table(f) for f in files]), directory / f"compacted-b{newest:012d}.parquet")
    for file in files:
        file.unlink()
    assert not tick(lake, instance, cursor).run_requests


def test_quarantined_records_request_their_ingest_hour_and_record_quarantine_materializations(
    lake: dict, instance: dg.DagsterInstance
) -> None:
    cursor = tick(lake, instance, None).cursor
    ingest = Hour(datetime.now(UTC).replace(minute=0, second=0, microsecond=0))
    directory = Path(lake["settings"].lake) / "quarantine" / lake["settings"].topics["weather"]
    hour_dir = directory / f"ingest_date={ingest.date}" / f"ingest_hour={ingest.hour}"
    hour_dir.mkdir(parents=True)
    try:
        pq.write_table(pa.table({"reason": ["malformed_json"] * 3}), hour_dir / "part-b000000000061.parquet")
        result = tick(lake, instance, cursor)
        assert requested(result) == [(ingest.key, ingest.key)]
        events = [
            (e.asset_key.to_user_string(), e.partition, e.metadata["new_rows"].value) for e in result.asset_events
        ]
        assert events == [("quarantine/weather", ingest.key, 3)]
        assert not tick(lake, instance, result.cursor).run_requests, "the cursor remembers the quarantine batch"
    finally:
        shutil.rmtree(directory)


def test_raw_and_quarantine_data_of_one_batch_get_different_run_keys() -> None:
    """Dagster drops a request whose run key it has seen: the quarantine's files of a batch, listed a tick after
    the raw ones, must still get their run."""
    hour = Hour.of_key("2026-03-01-22:00")
    raw, quarantine = (HourUpdate(zone, "gps", hour, 7, 1, 10, 100, 1, 100) for zone in ("raw", "quarantine"))
    keys = {range_request(hour, hour, updates).run_key for updates in ([raw], [quarantine], [raw, quarantine])}
    assert len(keys) == 3


@pytest.mark.spark  # it processes an hour
def test_automation_carries_a_processed_hour_to_gold_even_when_it_is_not_the_newest(
    lake: dict, instance: dg.DagsterInstance
) -> None:
    defs, old = lake["defs"], lake["hours"][0]
    downstream = dg.AssetSelection.groups("gold", "warehouse")
    before = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=downstream)
    assert before.total_requested == 0, "nothing upstream exists yet"
    graph = defs.resolve_asset_graph()
    ingest = [k for k in graph.get_all_asset_keys() if k.path[0] in ("catalog", "processed")]
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(partition_key=old.key, instance=instance, asset_selection=ingest).success
    after = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=downstream, cursor=before.cursor
    )
    gold = dg.AssetKey(["gold", "fleet_hourly"])
    assert after.get_requested_partitions(gold) == {old.key}
    # the warehouse hour follows in the same tick, so one run carries the hour from gold to the warehouse
    assert after.get_requested_partitions(dg.AssetKey(["warehouse", "fleet_hourly"])) == {old.key}
    again = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, asset_selection=downstream, cursor=after.cursor
    )
    assert again.total_requested == 0, "an hour already handled was requested twice"


def noop_job() -> dg.JobDefinition:
    @dg.op
    def noop() -> None: ...

    @dg.job
    def watched() -> None:
        noop()

    return watched


def started_run(instance: dg.DagsterInstance, worker_pid: int) -> str:
    """A run in STARTED state whose worker logged ``worker_pid``, as the code server records it."""
    from dagster._core.events import DagsterEvent, EngineEventData

    run = instance.create_run_for_job(noop_job())
    instance.report_dagster_event(DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name="watched"), run.run_id)
    instance.report_engine_event(
        f"Started process for run (pid: {worker_pid}).", run, EngineEventData.in_process(worker_pid)
    )
    return run.run_id


def test_watchdog_fails_runs_whose_worker_died_frees_their_slots_and_leaves_live_ones() -> None:
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        dead = subprocess.Popen(["true"])
        dead.wait()
        orphan, alive = started_run(instance, dead.pid), started_run(instance, os.getpid())
        pools = instance.event_log_storage
        pools.set_concurrency_slots("lake_catalog", 1)
        pools.claim_concurrency_slot("lake_catalog", orphan, "processed_tables")
        assert pools.get_concurrency_info("lake_catalog").active_slot_count == 1

        assert fail_runs_with_dead_workers(instance) == [orphan]
        assert instance.get_run_by_id(orphan).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive).status == dg.DagsterRunStatus.STARTED
        failure = instance.all_logs(orphan, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"worker (pid {dead.pid}) is gone" in failure[0].message
        assert pools.get_concurrency_info("lake_catalog").active_slot_count == 0, "the dead run's slot is held"
        assert instance.get_run_by_id(orphan).tags.get("dagster/will_retry") == "true", "run retries are on"
        assert fail_runs_with_dead_workers(instance) == []
