"""The asset graph on a fixture lake: every step materializes per hour, reproducibly, with checks that can fail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator.faults import FaultRates
from simulator.lake_fixture import write_raw_fixture
from smartcity.lake_layout import Hour
from smartcity.settings import Settings
from smartcity_dagster.assets.groups import STEPS
from smartcity_dagster.definitions import build_definitions
from smartcity_dagster.processing import plan_hour
from smartcity_dagster.resources.catalog import DuckDbCatalog, SchemaDriftError
from smartcity_dagster.resources.lake import LakeFile
from smartcity_dagster.resources.warehouse import warehouse_from_url
from smartcity_dagster.tables import RAW_TABLES, Column
from tests.conftest import isolated_environment, settings_from
from tests.graph import REBUILD, run_graph

pytestmark = pytest.mark.spark

FAULTS = FaultRates.build(0.02, duplicate=0.03, late=0.01, out_of_order=0.01)


def warehouse(settings: Settings, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.var_dir / "warehouse.duckdb"), read_only=True) as db:
        return db.execute(sql).df()


def raw_frame(lake: Path, topic: str) -> pd.DataFrame:
    files = sorted((lake / "raw" / topic).rglob("*.parquet"))
    return pd.concat([pq.read_table(file).to_pandas() for file in files], ignore_index=True)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A fixture lake with duplicates, late and out-of-order events, and the graph run for its busiest hour."""
    settings = settings_from(isolated_environment(tmp_path_factory.mktemp("assets") / "var"))
    start = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) - timedelta(hours=2)
    write_raw_fixture(Path(settings.lake), settings.topics, seed=11, start=start, max_events=40_000, faults=FAULTS)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    hour = Hour(start.replace(minute=0))
    result = run_graph(defs, instance, hour.key)
    return {"settings": settings, "defs": defs, "instance": instance, "hour": hour, "result": result}


def test_every_asset_materializes_for_the_hour_and_every_check_passes(city: dict) -> None:
    result = city["result"]
    assert result.success
    materialized = {event.asset_key.path[0] for event in result.get_asset_materialization_events()}
    assert materialized == set(STEPS)
    checks = result.get_asset_check_evaluations()
    assert checks, "no asset check ran"
    failed = [(c.asset_key.to_user_string(), c.check_name, c.description) for c in checks if not c.passed]
    assert not failed
    names = {c.check_name for c in checks}
    assert {"matches_contract", "reconciles_with_raw", "event_id_unique", "values_within_contract"} <= names
    assert any(name.startswith("unique_combination") for name in names), "dbt tests are not asset checks"


def test_warehouse_numbers_equal_an_independent_computation_from_the_raw_rows(city: dict) -> None:
    settings, hour = city["settings"], city["hour"]
    vehicle = raw_frame(Path(settings.lake), settings.topics["vehicle"]).drop_duplicates("event_id")
    vehicle = vehicle[vehicle["event_time"].dt.floor("h") == pd.Timestamp(hour.start)]
    fleet = warehouse(settings, "SELECT * FROM gold.fleet_hourly").set_index("hour_start")
    row = fleet.loc[pd.Timestamp(hour.start.replace(tzinfo=None))]
    assert row["events"] == len(vehicle)
    assert row["vehicles_reporting"] == vehicle["device_id"].nunique()
    assert row["mean_speed_kmh"] == pytest.approx(vehicle["speed_kmh"].mean(), abs=1e-9)
    traffic = raw_frame(Path(settings.lake), settings.topics["traffic"]).drop_duplicates("event_id")
    traffic = traffic[traffic["event_time"].dt.floor("h") == pd.Timestamp(hour.start)]
    cameras = warehouse(settings, "SELECT camera_id, vehicles_seen FROM gold.traffic_hourly").set_index("camera_id")
    assert cameras["vehicles_seen"].to_dict() == traffic.groupby("camera_id")["vehicle_count"].sum().to_dict()


def test_raw_duplicates_are_removed_and_reconciled(city: dict) -> None:
    settings, hour = city["settings"], city["hour"]
    raw = raw_frame(Path(settings.lake), settings.topics["vehicle"])
    raw = raw[raw["event_time"].dt.floor("h") == pd.Timestamp(hour.start)]
    assert raw["event_id"].duplicated().sum() > 0, "the fixture should hold duplicates"
    [event] = [
        e
        for e in city["result"].get_asset_materialization_events()
        if e.asset_key.to_user_string() == "processed/vehicle"
    ]
    metadata = event.materialization.metadata
    assert metadata["raw_rows"].value == len(raw)
    assert metadata["duplicates_removed"].value == raw["event_id"].duplicated().sum()


def test_a_second_materialization_leaves_identical_rows(city: dict) -> None:
    settings = city["settings"]
    tables = ["traffic_hourly", "fleet_hourly", "weather_hourly", "incidents_hourly", "vehicle_trips"]
    before = {t: warehouse(settings, f"SELECT * FROM gold.{t} ORDER BY ALL").round(9) for t in tables}
    assert run_graph(city["defs"], city["instance"], city["hour"].key).success
    for table in tables:
        after = warehouse(settings, f"SELECT * FROM gold.{table} ORDER BY ALL").round(9)
        pd.testing.assert_frame_equal(before[table], after, check_exact=True)


def publish_new_batch(settings: Settings, stream: str, hour: Hour, batch: int) -> tuple[Path, int]:
    """A later stream batch in ``hour``: copies of existing events under new ids, one of them sent twice; returns
    the processed hour's directory and the number of new events."""
    directory = Path(settings.lake) / "raw" / settings.topics[stream] / hour.relative_dir
    source = pq.read_table(sorted(directory.glob("*.parquet"))[0])
    rows = source.to_pandas().head(200)
    rows["event_id"] = [str(uuid.uuid4()) for _ in range(len(rows))]
    rows["kafka_offset"] += 10_000_000
    rows = pd.concat([rows, rows.head(1).assign(kafka_offset=rows["kafka_offset"].max() + 1)])
    pq.write_table(pa.Table.from_pandas(rows, schema=source.schema, preserve_index=False),
                   directory / f"part-b{batch:012d}.parquet")  # fmt: skip
    return Path(settings.lake) / "processed" / stream / hour.relative_dir, len(rows) - 1


def processed_rows(directory: Path) -> pd.DataFrame:
    frame = pd.concat([pq.read_table(file).to_pandas() for file in sorted(directory.glob("*.parquet"))])
    return frame.sort_values("event_id").reset_index(drop=True)


def test_a_new_batch_is_appended_and_gives_the_rows_a_full_rebuild_gives(city: dict) -> None:
    settings, hour = city["settings"], city["hour"]
    published = {stream: publish_new_batch(settings, stream, hour, batch=77) for stream in ("vehicle", "emergency")}
    processed = {stream: directory for stream, (directory, _) in published.items()}
    before = {stream: len(processed_rows(directory)) for stream, directory in processed.items()}
    assert run_graph(city["defs"], city["instance"], hour.key).success  # the blocking reconciliation passed
    appended = {stream: processed_rows(directory) for stream, directory in processed.items()}
    for stream, directory in processed.items():
        names = sorted(file.name for file in directory.glob("*.parquet"))
        assert (
            names
            == {
                "vehicle": ["part-b000000000000-00000.parquet", "part-b000000000077-00001.parquet"],  # one file added
                "emergency": ["part-b000000000077-00000.parquet"],  # rebuilt: incident durations depend on other events
            }[stream]
        )
        assert len(appended[stream]) == before[stream] + published[stream][1], "new events once, the resent dropped"
    assert run_graph(city["defs"], city["instance"], hour.key, run_config=REBUILD).success
    for stream, directory in processed.items():
        assert [file.name for file in directory.glob("*.parquet")] == ["part-b000000000077-00000.parquet"]
        # every column equal, incident durations included (the appended ones found their reports in earlier batches)
        pd.testing.assert_frame_equal(processed_rows(directory), appended[stream], check_exact=True)


def test_an_hour_is_appended_to_only_when_its_files_say_which_batches_it_holds() -> None:
    raw = [LakeFile(name, 1) for name in ("compacted-b000000000004.parquet", "part-b000000000005.parquet",
                                          "part-b000000000006.parquet")]  # fmt: skip
    processed = [LakeFile("part-b000000000005-00000.parquet", 1)]
    plan = plan_hour(raw, processed, rebuild=False)
    assert plan.append and plan.inputs == raw[1:], "batch 5 is read again in case it was listed half-published"
    assert (plan.newest, plan.first_index, plan.lookback) == (6, 1, raw)
    assert not plan_hour(raw, processed, rebuild=True).append
    assert not plan_hour(raw, [LakeFile("part-00000.parquet", 1)], rebuild=False).append, "files without a batch"
    compacted = [LakeFile("compacted-b000000000006.parquet", 1)]
    assert plan_hour(compacted, processed, rebuild=False).inputs == compacted, "batch 6 is not processed yet"
    assert not plan_hour(compacted, processed, rebuild=False).append


def test_the_catalog_answers_queries_by_table_name(city: dict) -> None:
    settings = city["settings"]
    with duckdb.connect() as db:
        db.execute(f"ATTACH '{settings.paths.catalog}' AS glue (READ_ONLY)")
        processed = db.execute("SELECT count(*), count(DISTINCT event_id) FROM glue.processed.vehicle").fetchone()
        gold = db.execute("SELECT count(*) FROM glue.gold.fleet_hourly").fetchone()[0]
        partitions = db.execute(
            "SELECT rows FROM glue.glue_meta.partitions WHERE database = 'processed' AND table_name = 'vehicle'"
        ).fetchall()
    assert processed[0] == processed[1] > 0
    assert gold >= 1
    assert sum(row[0] for row in partitions) == processed[0]


def test_the_whole_graph_runs_on_an_empty_hour(city: dict) -> None:
    empty = Hour(city["hour"].start - timedelta(days=1))
    result = run_graph(city["defs"], city["instance"], empty.key)
    assert result.success
    rows = warehouse(
        city["settings"],
        f"SELECT count(*) AS n FROM gold.fleet_hourly WHERE hour_start = '{empty.start:%Y-%m-%d %H:%M}'",
    )
    assert rows["n"][0] == 0


def test_a_type_change_fails_the_schema_check_naming_the_column(city: dict, tmp_path: Path) -> None:
    settings, hour = city["settings"], Hour(city["hour"].start - timedelta(days=1, hours=1))
    target = Path(settings.lake) / "raw" / settings.topics["weather"] / hour.relative_dir
    target.mkdir(parents=True)
    sample = next((Path(settings.lake) / "raw" / settings.topics["weather"]).rglob("*.parquet"))
    frame = pq.read_table(sample).to_pandas()
    frame["aqi"] = frame["aqi"].astype(str)  # an integer field now arrives as text
    frame.to_parquet(target / "part-b000000000009.parquet")
    result = run_graph(city["defs"], city["instance"], hour.key, raise_on_error=False)
    assert not result.success  # the blocking check stops the hour before processing
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert [c.asset_key.to_user_string() for c in failed] == ["catalog/raw/weather"]
    assert "'aqi'" in failed[0].description


def test_an_incident_reported_an_hour_earlier_gets_its_duration_from_the_lookback(city: dict) -> None:
    settings, later = city["settings"], Hour(city["hour"].start + timedelta(hours=1))
    assert run_graph(city["defs"], city["instance"], later.key).success  # a run for this hour alone
    lake = Path(settings.lake)
    raw = raw_frame(lake, settings.topics["emergency"]).drop_duplicates("event_id")
    reported_at = raw[raw["status"] == "reported"].groupby("incident_id")["event_time"].min()
    processed = pq.read_table(lake / "processed" / "emergency" / later.relative_dir).to_pandas()
    processed["event_time"] = pd.to_datetime(processed["event_time"], utc=True)
    carried = processed[processed["incident_id"].map(reported_at) < pd.Timestamp(later.start)]
    assert len(carried) > 0, "the fixture should hold incidents open across the hour boundary"
    expected = (carried["event_time"] - carried["incident_id"].map(reported_at)).dt.total_seconds()
    assert carried["incident_duration_s"].to_numpy() == pytest.approx(expected.to_numpy(), abs=1e-6)


def test_catalog_adds_an_optional_column_and_refuses_a_type_change(tmp_path: Path) -> None:
    catalog = DuckDbCatalog(path=str(tmp_path / "catalog.duckdb"))
    table = RAW_TABLES["weather"]
    catalog.register_table(table, str(tmp_path / "raw"), [], [])
    wider = table._replace(columns=(*table.columns, Column("uv_index", "double", "new optional field")))
    assert catalog.register_table(wider, str(tmp_path / "raw"), [], []) == ["uv_index"]
    assert catalog.register_table(wider, str(tmp_path / "raw"), [], []) == []
    changed = wider._replace(columns=tuple(c._replace(type="string") if c.name == "aqi" else c for c in wider.columns))
    with pytest.raises(SchemaDriftError, match="column 'aqi' is registered as bigint but is now string"):
        catalog.register_table(changed, str(tmp_path / "raw"), [], [])


def test_a_first_run_on_no_data_creates_every_warehouse_table_empty(tmp_path: Path) -> None:
    """The warehouse has every table from the first load, so the dashboard never lacks one an event type fills."""
    settings = settings_from(isolated_environment(tmp_path / "var"))
    hour = Hour((datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0))
    defs = build_definitions(settings)
    assert run_graph(defs, dg.DagsterInstance.ephemeral(), hour.key).success
    gold = sorted(key.path[-1] for key in defs.resolve_asset_graph().get_all_asset_keys() if key.path[0] == "gold")
    assert sorted(warehouse_from_url(settings.warehouse).tables()) == gold
    for table in gold:
        assert warehouse(settings, f"SELECT count(*) AS n FROM gold.{table}")["n"][0] == 0
