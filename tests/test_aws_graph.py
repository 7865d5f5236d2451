"""The asset graph on the aws profile: the same hour of city events, in a lake on S3 (SeaweedFS) with the Glue
Data Catalog (moto), gives the warehouse exactly what the local profile gives; the lake sensor finds it by listing
S3; every object it writes is encrypted, and the catalog points at every hour it published."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import dagster as dg
import duckdb
import pandas as pd
import pytest
import trino as trino_client

from simulator.lake_fixture import write_raw_fixture
from smartcity.lake_layout import Hour
from smartcity.object_store import S3Storage, storage_for
from smartcity.services import Service
from smartcity.settings import Settings
from smartcity_aws.access import names
from smartcity_aws.deploy import Deployment
from smartcity_aws.testbed import Testbed
from smartcity_dagster.definitions import build_definitions
from tests.conftest import isolated_environment, point_clients_at, settings_from
from tests.dbt_compile import GOLD_MODELS, compiled_models
from tests.graph import run_graph
from tests.test_dagster_assets import FAULTS

pytestmark = pytest.mark.spark
TABLES = ("traffic_hourly", "fleet_hourly", "weather_hourly", "incidents_hourly", "vehicle_trips", "events_hourly",
          "quarantine_hourly")  # fmt: skip
RUN = """
import sys
import dagster as dg
from smartcity.settings import load_settings
from smartcity_dagster.definitions import build_definitions
from tests.graph import run_graph, sensor_hours

defs = build_definitions(load_settings())
with dg.instance_for_test() as instance:
    print("sensor:", ",".join(sensor_hours(defs, instance)))
    assert run_graph(defs, instance, sys.argv[1]).success
"""


def warehouse_rows(settings: Settings, table: str) -> pd.DataFrame:
    with duckdb.connect(str(settings.var_dir / "warehouse.duckdb"), read_only=True) as db:
        frame = db.execute(f"SELECT * FROM gold.{table} ORDER BY ALL").df()
    return frame.round(9)


def encryption_of(storage: S3Storage, key: str) -> str | None:
    return storage.client.head_object(Bucket=storage.bucket, Key=storage.key(key)).get("ServerSideEncryption")


def upload_lake(local: Path, storage: S3Storage) -> None:
    """The fixture's raw zone, laid out on S3 as the stream publishes it."""
    for file in sorted((local / "raw").rglob("*.parquet")):  # not the local run's processed and gold zones
        storage.client.upload_file(str(file), storage.bucket, storage.key(str(file.relative_to(local))),
                                   ExtraArgs=storage.encryption)  # fmt: skip


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict:
    start = datetime.now(UTC).replace(minute=5, second=0, microsecond=0) - timedelta(hours=2)
    local = settings_from(isolated_environment(tmp_path_factory.mktemp("local") / "var"))
    write_raw_fixture(Path(local.lake), local.topics, seed=17, start=start, max_events=20_000, faults=FAULTS)
    hour = Hour(start.replace(minute=0))
    assert run_graph(build_definitions(local), dg.DagsterInstance.ephemeral(), hour.key).success
    return {"local": local, "hour": hour}


@pytest.fixture(scope="module")
def on_s3(
    city: dict, aws_testbed: Testbed, trino_starting: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """The city's raw hour uploaded to a lake on S3 and run through the graph on the aws profile (while Trino
    starts for the test that needs it)."""
    hour, unique = city["hour"], uuid.uuid4().hex[:8]
    with pytest.MonkeyPatch.context() as patch:  # this module's AWS clients on the test bed (as `on_testbed`)
        point_clients_at(aws_testbed, patch)
        bucket = aws_testbed.platform_environment()["SMARTCITY_LAKE_URI"].split("/")[2]
        environment = {**isolated_environment(tmp_path_factory.mktemp("aws") / "var"), "SMARTCITY_PROFILE": "aws",
                       "SMARTCITY_AWS_ENVIRONMENT": f"t{unique}",
                       "SMARTCITY_LAKE_URI": f"s3://{bucket}/lake-{unique}"}  # fmt: skip
        settings = settings_from(environment)
        Deployment(settings_from({**environment, "SMARTCITY_LAKE_URI": f"s3://{bucket}/lake"})).apply()
        upload_lake(Path(city["local"].lake), storage_for(settings.lake, settings))
        ran = subprocess.run([sys.executable, "-c", RUN, hour.key], env={**os.environ, **environment},
                             capture_output=True, text=True, timeout=800)  # fmt: skip
        yield {"settings": settings, "ran": ran}


@pytest.mark.timeout(900)
def test_the_graph_on_s3_and_glue_loads_what_the_local_profile_loads(
    city: dict, on_s3: dict, on_testbed: dict[str, str]
) -> None:
    local, hour, settings, ran = city["local"], city["hour"], on_s3["settings"], on_s3["ran"]
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-5000:]
    assert hour.key in ran.stdout.split("sensor:", 1)[1].splitlines()[0], "the lake sensor lists the hour on S3"
    storage = storage_for(settings.lake, settings)

    for table in TABLES:
        pd.testing.assert_frame_equal(warehouse_rows(settings, table), warehouse_rows(local, table), check_exact=False,
                                      rtol=0, atol=1e-9, obj=table)  # fmt: skip
    written = [key for key in storage.list_files("") if not key.startswith("raw/")]
    assert any(key.startswith("processed/") for key in written) and any(key.startswith("gold/") for key in written)
    assert [key for key in written if encryption_of(storage, key) != "AES256"] == []
    glue = boto3.client("glue", region_name=settings.aws_region)
    database = names(settings)["database"]
    for name in ("raw_vehicle", "processed_vehicle", "gold_fleet_hourly"):
        partition = glue.get_partition(DatabaseName=database, TableName=name,
                                       PartitionValues=[hour.date, hour.hour])["Partition"]  # fmt: skip
        location = partition["StorageDescriptor"]["Location"]
        assert location.startswith(settings.lake.replace("s3a://", "s3://")), location
        assert int(partition["Parameters"]["numRows"]) > 0
        if not name.startswith("raw_"):
            assert "/v=" in location, "a published hour lives in a version the catalog points at"


def sorted_rows(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.round(9)
    return frame.sort_values(list(frame.columns), na_position="last").reset_index(drop=True)


@pytest.mark.timeout(900)
def test_every_gold_model_gives_the_same_rows_on_trino(city: dict, on_s3: dict, trino: str, tmp_path: Path) -> None:
    """Athena's engine (Trino) on the Glue catalog and S3 runs each model as dbt-trino compiles it, and gives the
    rows dbt-duckdb built from the same processed hour: exact counts, floats to 1e-9."""
    settings, hour = on_s3["settings"], city["hour"]
    assert on_s3["ran"].returncode == 0
    connection = trino_client.dbapi.connect(host="127.0.0.1", port=int(trino.rsplit(":", 1)[1]), user="smartcity")
    target = {"type": "trino", "method": "none", "user": "smartcity", "host": "127.0.0.1",
              "port": int(trino.rsplit(":", 1)[1]), "http_scheme": "http", "database": "awsdatacatalog",
              "schema": names(settings)["database"], "threads": 1}  # fmt: skip
    models = compiled_models(target, hour, tmp_path)
    assert sorted(models) == GOLD_MODELS
    for table, sql in models.items():
        assert "awsdatacatalog" in sql and "glue." not in sql, sql
        cursor = connection.cursor()
        cursor.execute(sql)
        on_trino = pd.DataFrame(cursor.fetchall(), columns=[column[0] for column in cursor.description])
        on_duckdb = warehouse_rows(settings, table)
        assert len(on_trino) == len(on_duckdb), table
        assert len(on_duckdb) > 0 or table == "quarantine_hourly", table  # the raw fixture quarantines nothing
        pd.testing.assert_frame_equal(sorted_rows(on_trino[list(on_duckdb.columns)]), sorted_rows(on_duckdb),
                                      check_dtype=False, check_exact=False, rtol=0, atol=1e-9, obj=table)  # fmt: skip
