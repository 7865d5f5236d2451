"""Maintenance jobs: retention removes what is older than the policy everywhere; compaction keeps every row."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from simulator.lake_fixture import write_raw_fixture
from smartcity.lake_layout import Hour
from smartcity_dagster.definitions import build_definitions
from tests.conftest import isolated_environment, settings_from
from tests.graph import run_graph

pytestmark = pytest.mark.spark


def hour_dirs(lake: Path, hour: Hour) -> list[Path]:
    return sorted(path for path in lake.glob(f"*/*/{hour.relative_dir}"))


def test_retention_drops_old_hours_from_lake_catalog_and_warehouse(tmp_path: Path) -> None:
    settings = settings_from({**isolated_environment(tmp_path / "var"), "SMARTCITY_RETENTION_DAYS": "30"})
    lake = Path(settings.lake)
    now = datetime.now(UTC).replace(minute=10, second=0, microsecond=0)
    old, recent = Hour((now - timedelta(days=40)).replace(minute=0)), Hour((now - timedelta(hours=3)).replace(minute=0))
    for seed, hour in enumerate((old, recent)):
        write_raw_fixture(lake, settings.topics, seed=seed, start=hour.start + timedelta(minutes=5), max_events=3_000)
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    for hour in (old, recent):
        assert run_graph(defs, instance, hour.key).success
    assert {path.parts[-4] for path in hour_dirs(lake, old)} == {"raw", "processed", "gold"}

    assert defs.get_job_def("retention_job").execute_in_process(instance=instance).success

    assert hour_dirs(lake, old) == []
    assert {path.parts[-4] for path in hour_dirs(lake, recent)} == {"raw", "processed", "gold"}
    with duckdb.connect() as db:
        db.execute(f"ATTACH '{settings.paths.catalog}' AS glue (READ_ONLY)")
        db.execute(f"ATTACH '{settings.var_dir / 'warehouse.duckdb'}' AS dw (READ_ONLY)")
        dates = {row[0] for row in db.execute("SELECT DISTINCT event_date FROM glue.glue_meta.partitions").fetchall()}
        hours = {row[0] for row in db.execute("SELECT DISTINCT hour_start FROM dw.gold.fleet_hourly").fetchall()}
    assert dates == {recent.date}
    assert hours == {recent.start.replace(tzinfo=None)}


def test_compaction_job_leaves_one_file_per_hour_with_every_row(tmp_path: Path) -> None:
    settings = settings_from(isolated_environment(tmp_path / "var"))
    start = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) - timedelta(hours=2)
    write_raw_fixture(Path(settings.lake), settings.topics, seed=4, start=start, max_events=2_000)
    hour_dir = Path(settings.lake) / "raw" / settings.topics["vehicle"] / Hour(start.replace(minute=0)).relative_dir
    shutil.copy(hour_dir / "part-b000000000000.parquet", hour_dir / "part-b000000000001.parquet")
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in hour_dir.glob("*.parquet"))
    commits = Path(settings.checkpoints) / "raw_ingest" / "commits"
    commits.mkdir(parents=True)
    (commits / "1").write_text("v1\n{}\n")  # both batches are in the stream's commit log

    job = build_definitions(settings).get_job_def("compaction_job")
    assert job.execute_in_process(instance=dg.DagsterInstance.ephemeral()).success

    files = sorted(hour_dir.glob("*.parquet"))
    assert [f.name for f in files] == ["compacted-b000000000001.parquet"]
    assert pq.ParquetFile(files[0]).metadata.num_rows == rows
    with duckdb.connect() as db:  # the catalog knows the hour's new files
        db.execute(f"ATTACH '{settings.paths.catalog}' AS glue (READ_ONLY)")
        registered = db.execute(
            "SELECT files, rows FROM glue.glue_meta.partitions WHERE database = 'raw' AND table_name = 'vehicle' "
            "AND event_date = ? AND event_hour = ?",
            [hour_dir.parent.name.split("=")[1], hour_dir.name.split("=")[1]],
        ).fetchall()
    assert registered == [(1, rows)]
