"""The Redshift loader: its engine-neutral SQL run on a real PostgreSQL through dagster-aws's Redshift client, and
its Redshift-only SQL (keys, COPY) checked against golden statements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import psycopg2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster_aws.redshift import RedshiftClientResource

from smartcity.lake_layout import GOLD, Hour, hour_prefix
from smartcity.settings import Settings
from smartcity_dagster.resources.lake import LocalLake
from smartcity_dagster.resources.redshift import (
    MANIFESTS,
    RedshiftLoad,
    RedshiftWarehouse,
    manifest,
    redshift_client,
    warehouse_of,
)
from smartcity_dagster.resources.warehouse import GoldWindow, PostgresWarehouse
from tests.conftest import settings_from

T0 = datetime(2026, 3, 1, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
ROLE = "arn:aws:iam::123456789012:role/smartcity-prod-loader"


def traffic(hour: datetime, *cameras: int) -> pa.Table:
    return pa.table(
        {
            "hour_start": pa.array([hour.replace(tzinfo=None)] * len(cameras), pa.timestamp("us")),
            "camera_id": pa.array([f"cam-{c}" for c in cameras], pa.string()),
            "vehicles_seen": pa.array(cameras, pa.int64()),
            "mean_speed_kmh": pa.array([c / 3 for c in cameras], pa.float64()),
        }
    )


def gold_window(tmp_path: Path, *hours: tuple[datetime, pa.Table]) -> GoldWindow:
    """A local lake holding these gold hours of traffic_hourly, and the window over them."""
    lake = LocalLake(root=str(tmp_path / "lake"), checkpoint=str(tmp_path / "checkpoint"))
    for start, rows in hours:
        key = f"{hour_prefix(GOLD, 'traffic_hourly', Hour(start))}/part-00000.parquet"
        lake.store.path(key).parent.mkdir(parents=True)
        pq.write_table(rows, lake.store.path(key))
    files = lake.files_of(GOLD, "traffic_hourly", [Hour(start) for start, _ in hours])
    return GoldWindow(lake, [file for listed in files.values() for file in listed], lambda: None)


def test_the_redshift_statements_are_the_golden_ones(tmp_path: Path) -> None:
    gold = gold_window(tmp_path, (T0, traffic(T0, 1, 2)), (T0 + HOUR, traffic(T0 + HOUR, 3)))
    warehouse = RedshiftWarehouse(redshift=redshift_client("redshift://loader@example:5439/city"), iam_role=ROLE,
                                  region="eu-west-2")  # fmt: skip
    manifest_uri = gold.lake.uri(f"{MANIFESTS}0/manifest.json")
    assert warehouse.statements("traffic_hourly", gold, T0, T0 + 2 * HOUR, manifest_uri) == [
        "CREATE SCHEMA IF NOT EXISTS gold",
        'CREATE TABLE IF NOT EXISTS gold.traffic_hourly ("hour_start" TIMESTAMP, "camera_id" VARCHAR(256), '
        '"vehicles_seen" BIGINT, "mean_speed_kmh" DOUBLE PRECISION) DISTKEY(camera_id) COMPOUND SORTKEY(hour_start)',
        "CREATE TEMP TABLE stage_traffic_hourly (LIKE gold.traffic_hourly)",
        f"COPY stage_traffic_hourly FROM '{manifest_uri}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET MANIFEST "
        "REGION 'eu-west-2'",
        "DELETE FROM gold.traffic_hourly WHERE hour_start >= TIMESTAMP '2026-03-01 10:00:00' "
        "AND hour_start < TIMESTAMP '2026-03-01 12:00:00'",
        "INSERT INTO gold.traffic_hourly SELECT * FROM stage_traffic_hourly",
        "DROP TABLE stage_traffic_hourly",
    ]
    entries = manifest(gold)["entries"]
    assert [(entry["url"], entry["meta"]["content_length"], entry["mandatory"]) for entry in entries] == [
        (gold.lake.uri(file.key), Path(gold.lake.store.path(file.key)).stat().st_size, True) for file in gold.files
    ]
    assert [entry["url"].split("/gold/", 1)[1].split("/")[0] for entry in entries] == ["traffic_hourly"] * 2


def test_a_window_without_files_is_emptied_without_a_copy(tmp_path: Path) -> None:
    empty = GoldWindow(gold_window(tmp_path).lake, [], lambda: traffic(T0).schema)
    warehouse = RedshiftWarehouse(redshift=redshift_client("redshift://loader@example/city"), iam_role=ROLE,
                                  region="eu-west-2")  # fmt: skip
    statements = warehouse.statements("events_hourly", empty, T0, T0 + HOUR, "s3://unused")
    assert not [statement for statement in statements if statement.startswith("COPY")]
    assert "DISTSTYLE AUTO COMPOUND SORTKEY(hour_start)" in statements[1]
    assert statements[-3].startswith("DELETE FROM gold.events_hourly WHERE")
    never_built = empty._replace(model_schema=lambda: None)
    assert warehouse.statements("events_hourly", never_built, T0, T0 + HOUR, "s3://unused") == []


def test_the_load_never_carries_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    settings = settings_from({"SMARTCITY_PROFILE": "aws", "SMARTCITY_LAKE_URI": "s3://city-lake/lake",
                              "SMARTCITY_WAREHOUSE_URL": "redshift://loader:pa%40ss@cluster.example:5439/city",
                              "SMARTCITY_REDSHIFT_IAM_ROLE": ROLE})  # fmt: skip
    warehouse = warehouse_of(settings)
    assert isinstance(warehouse, RedshiftWarehouse)
    assert (warehouse.redshift.host, warehouse.redshift.port, warehouse.redshift.database) == (
        "cluster.example", 5439, "city")  # fmt: skip
    assert (warehouse.redshift.password, warehouse.redshift.sslmode) == ("pa@ss", "require")
    gold = gold_window(tmp_path, (T0, traffic(T0, 1)))
    sql = "\n".join(warehouse.statements("traffic_hourly", gold, T0, T0 + HOUR, "s3://city-lake/lake/m.json"))
    assert f"IAM_ROLE '{ROLE}'" in sql
    for leaked in ("AKIA", secret, "pa@ss", "CREDENTIALS", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "SESSION_TOKEN"):
        assert leaked not in sql


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SMARTCITY_WAREHOUSE_URL": "redshift://loader@cluster.example/city"}, "SMARTCITY_PROFILE=aws"),
        ({"SMARTCITY_PROFILE": "aws", "SMARTCITY_LAKE_URI": "s3://city-lake/lake",
          "SMARTCITY_WAREHOUSE_URL": "redshift://loader@cluster.example/city"}, "SMARTCITY_REDSHIFT_IAM_ROLE"),
        ({"SMARTCITY_REDSHIFT_IAM_ROLE": "arn:aws:iam::1234:role/x"}, "not an IAM role ARN"),
    ],
)  # fmt: skip
def test_a_redshift_warehouse_needs_the_aws_profile_and_the_loader_role(environment: dict, message: str) -> None:
    with pytest.raises(Exception, match=message):
        settings_from(environment)


@pytest.fixture
def redshift_on_postgres(postgres_url: str) -> RedshiftClientResource:
    """dagster-aws's Redshift client on the test PostgreSQL, with an empty gold schema."""
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS gold CASCADE")
    return redshift_client(postgres_url.replace("postgresql://", "redshift://") + "?sslmode=disable")


def load_on_postgres(client: RedshiftClientResource, rows: pa.Table, start: datetime, end: datetime) -> None:
    """The load as on Redshift, with the rows inserted into staging where Redshift would COPY them; the table is
    created without Redshift's keys, which PostgreSQL does not know."""
    load = RedshiftLoad("traffic_hourly", rows.schema, start, end)
    stage = [f"INSERT INTO {load.staging} VALUES ('{r['hour_start']}', '{r['camera_id']}', {r['vehicles_seen']}, "
             f"{r['mean_speed_kmh']!r})" for r in rows.to_pylist()]  # fmt: skip
    client.get_client().execute_queries(
        [
            "CREATE SCHEMA IF NOT EXISTS gold",
            f"CREATE TABLE IF NOT EXISTS {load.target} ({load.columns()})",
            load.create_staging(),
            *stage,
            *load.replace(),
        ]
    )


def test_the_window_replace_runs_on_postgres_and_is_idempotent(redshift_on_postgres: RedshiftClientResource,
                                                                postgres_url: str) -> None:  # fmt: skip
    load_on_postgres(redshift_on_postgres, traffic(T0, 1, 2), T0, T0 + HOUR)
    load_on_postgres(redshift_on_postgres, traffic(T0 + HOUR, 7), T0 + HOUR, T0 + 2 * HOUR)
    load_on_postgres(redshift_on_postgres, traffic(T0, 3, 4), T0, T0 + HOUR)
    first = PostgresWarehouse(url=postgres_url)
    with psycopg.connect(postgres_url) as connection:
        once = connection.execute("SELECT * FROM gold.traffic_hourly ORDER BY 1, 2").fetchall()
    load_on_postgres(redshift_on_postgres, traffic(T0, 3, 4), T0, T0 + HOUR)
    with psycopg.connect(postgres_url) as connection:
        twice = connection.execute("SELECT * FROM gold.traffic_hourly ORDER BY 1, 2").fetchall()
    assert once == twice
    assert [(row[1], row[2], row[3]) for row in twice] == [("cam-3", 3, 1.0), ("cam-4", 4, 4 / 3), ("cam-7", 7, 7 / 3)]
    assert first.tables() == ["traffic_hourly"]


def test_a_failed_load_leaves_the_window_as_it_was(redshift_on_postgres: RedshiftClientResource,
                                                   postgres_url: str) -> None:  # fmt: skip
    load_on_postgres(redshift_on_postgres, traffic(T0, 1, 2), T0, T0 + HOUR)
    load = RedshiftLoad("traffic_hourly", traffic(T0).schema, T0, T0 + HOUR)
    # The COPY's stand-in fails after the window's rows were deleted: the client's list is one transaction
    # (psycopg2 opens one even on an autocommit connection), which is how load_window sends its statements.
    with pytest.raises(psycopg2.Error):
        redshift_on_postgres.get_client().execute_queries(
            [
                load.create_staging(),
                load.replace()[0],
                f"INSERT INTO {load.staging} VALUES ('not a time')",
                *load.replace()[1:],
            ]
        )
    with psycopg.connect(postgres_url) as connection:
        kept = connection.execute("SELECT camera_id FROM gold.traffic_hourly ORDER BY 1").fetchall()
    assert kept == [("cam-1",), ("cam-2",)]


def test_the_aws_profile_keeps_a_postgres_warehouse(tmp_path: Path) -> None:
    settings: Settings = settings_from(
        {"SMARTCITY_PROFILE": "aws", "SMARTCITY_LAKE_URI": "s3://city-lake/lake",
         "SMARTCITY_WAREHOUSE_URL": "postgresql://city@127.0.0.1:5432/city"}
    )  # fmt: skip
    assert isinstance(warehouse_of(settings), PostgresWarehouse)


def test_the_dashboard_reads_redshift_over_tls_unless_told_otherwise(
    redshift_on_postgres: RedshiftClientResource, postgres_url: str
) -> None:
    from dashboard.warehouse import WarehouseUnavailable, query

    load_on_postgres(redshift_on_postgres, traffic(T0, 1, 2), T0, T0 + HOUR)
    redshift_url = postgres_url.replace("postgresql://", "redshift://")
    frame = query(f"{redshift_url}?sslmode=disable", "SELECT sum(vehicles_seen) AS seen FROM gold.traffic_hourly")
    assert frame["seen"].tolist() == [3]
    with pytest.raises(WarehouseUnavailable, match="SSL"):  # the test server has no TLS: Redshift always does
        query(redshift_url, "SELECT 1")
