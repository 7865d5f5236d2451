"""The warehouse loaders, DuckDB and a real PostgreSQL: a window is replaced, never added to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import psycopg
import pyarrow as pa
import pytest

from simulator.lake_fixture import write_raw_fixture
from smartcity.errors import PlatformError
from smartcity.lake_layout import Hour
from smartcity.warehouse_url import parse_warehouse_url
from smartcity_dagster.definitions import build_definitions
from smartcity_dagster.resources.warehouse import Warehouse, warehouse_from_url
from tests.conftest import isolated_environment, settings_from
from tests.graph import run_graph

T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)


def rows(hour: datetime, *values: int) -> pa.Table:
    return pa.table(
        {
            "hour_start": pa.array([hour.replace(tzinfo=None)] * len(values), pa.timestamp("us")),
            "camera_id": [f"cam-{v}" for v in values],
            "vehicles_seen": pa.array(values, pa.int64()),
            "mean_speed_kmh": [v / 3 for v in values],
        }
    )


def content(warehouse: Warehouse, url: str) -> list[tuple]:
    if url.startswith("duckdb"):
        with duckdb.connect(str(parse_warehouse_url(url).duckdb_file), read_only=True) as db:
            return db.execute("SELECT * FROM gold.traffic_hourly ORDER BY ALL").fetchall()
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT * FROM gold.traffic_hourly ORDER BY 1, 2").fetchall()


@pytest.fixture(params=["duckdb", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    base = request.getfixturevalue("postgres_url")
    with psycopg.connect(base, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS gold CASCADE")
    return base


def test_replacing_a_window_replaces_exactly_that_window(url: str) -> None:
    warehouse = warehouse_from_url(url)
    one_hour = timedelta(hours=1)
    warehouse.replace_window("traffic_hourly", rows(T0, 1, 2), T0, T0 + one_hour)
    warehouse.replace_window("traffic_hourly", rows(T0 + one_hour, 7), T0 + one_hour, T0 + 2 * one_hour)
    warehouse.replace_window("traffic_hourly", rows(T0, 3), T0, T0 + one_hour)
    warehouse.replace_window("traffic_hourly", rows(T0, 3), T0, T0 + one_hour)  # idempotent
    assert [(r[1], r[2]) for r in content(warehouse, url)] == [("cam-3", 3), ("cam-7", 7)]
    assert warehouse.tables() == ["traffic_hourly"]
    assert warehouse.replace_window("traffic_hourly", None, T0 + one_hour, T0 + 2 * one_hour) == 0
    assert [(r[1], r[2]) for r in content(warehouse, url)] == [("cam-3", 3)]
    assert warehouse.delete_before("traffic_hourly", T0 + one_hour) == 1
    assert content(warehouse, url) == []


def test_an_unreachable_postgres_names_the_server_and_hides_the_password() -> None:
    warehouse = warehouse_from_url("postgresql://loader:s3cret@127.0.0.1:9/warehouse")
    with pytest.raises(PlatformError, match=r"cannot reach the PostgreSQL warehouse at .*:\*\*\*@127.0.0.1:9") as error:
        warehouse.tables()
    assert "s3cret" not in str(error.value)


@pytest.mark.spark  # it runs the graph
def test_the_graph_loads_postgres_when_a_url_is_configured(postgres_url: str, tmp_path: Path) -> None:
    settings = settings_from({**isolated_environment(tmp_path / "var"), "SMARTCITY_WAREHOUSE_URL": postgres_url})
    start = datetime.now(UTC).replace(minute=10, second=0, microsecond=0) - timedelta(hours=5)
    write_raw_fixture(Path(settings.lake), settings.topics, seed=2, start=start, max_events=6_000)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS gold CASCADE")
    assert run_graph(
        build_definitions(settings), dg.DagsterInstance.ephemeral(), Hour(start.replace(minute=0)).key
    ).success
    with psycopg.connect(postgres_url) as connection:
        fleet = connection.execute("SELECT hour_start, events FROM gold.fleet_hourly").fetchall()
    assert fleet and fleet[0][0] == start.replace(minute=0, tzinfo=None)
    assert fleet[0][1] > 0
