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

from simulator.city import Scenario
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
from tests.graph import run_graph
from tests.test_dagster_assets import FAULTS

pytestmark = pytest.mark.spark
TABLES = ("traffic_hourly", "fleet_hourly", "weather_hourly", "incidents_hourly", "vehicle_trips", "events_hourly",
          "quarantine_hourly")  # fmt: skip
RUN = """
import sys
import dagster as dg
from smartcity.settings import load_settings
from smartcity_dagster.assets.groups import STEPS
from smartcity_dagster.definitions import build_definitions
from tests.graph import run_graph, sensor_hours

defs = build_definitions(load_settings())
with dg.instance_for_test() as instance:
    if len(sys.argv) == 2:
        print("sensor:", ",".join(sensor_hours(defs, instance)))
    assert run_graph(defs, instance, *sys.argv[1:2], steps=tuple(sys.argv[2:]) or STEPS).success
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
    write_raw_fixture(Path(local.lake), local.topics, seed=17, start=start, max_events=20_000, faults=FAULTS,
                      scenario=Scenario(incidents_per_hour=600))  # fmt: skip  # incidents in every hour of the day
    hour = Hour(start.replace(minute=0))
    assert run_graph(build_definitions(local), dg.DagsterInstance.ephemeral(), hour.key).success
    return {"local": local, "hour": hour}


def run_on_aws(environment: dict[str, str], hour: Hour, *steps: str) -> subprocess.CompletedProcess:
    """The graph (or only ``steps`` of it) for the hour on the aws profile, in a process of its own."""
    return subprocess.run([sys.executable, "-c", RUN, hour.key, *steps], env={**os.environ, **environment},
                          capture_output=True, text=True, timeout=800)  # fmt: skip


@pytest.fixture(scope="module")
def on_s3(
    aws_testbed: Testbed, trino_starting: Service, city: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """The city's raw hour uploaded to a lake on S3 and run through the graph on the aws profile, with the gold
    models on Trino in the place of Athena (it starts while the local profile runs the same hour)."""
    hour, unique = city["hour"], uuid.uuid4().hex[:8]
    with pytest.MonkeyPatch.context() as patch:  # this module's AWS clients on the test bed (as `on_testbed`)
        point_clients_at(aws_testbed, patch)
        bucket = aws_testbed.platform_environment()["SMARTCITY_LAKE_URI"].split("/")[2]
        environment = {**isolated_environment(tmp_path_factory.mktemp("aws") / "var"), "SMARTCITY_PROFILE": "aws",
                       "SMARTCITY_AWS_ENVIRONMENT": f"t{unique}", "SMARTCITY_LAKE_URI": f"s3://{bucket}/lake-{unique}",
                       "SMARTCITY_TRINO_URL": aws_testbed.platform_environment()["SMARTCITY_TRINO_URL"]}  # fmt: skip
        settings = settings_from(environment)
        Deployment(settings_from({**environment, "SMARTCITY_LAKE_URI": f"s3://{bucket}/lake"})).apply()
        upload_lake(Path(city["local"].lake), storage_for(settings.lake, settings))
        trino_starting.start()  # returns once it runs queries
        yield {"settings": settings, "environment": environment, "ran": run_on_aws(environment, hour)}


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


def gold_partitions(settings: Settings, hour: Hour) -> dict[str, str]:
    """Where the Glue catalog says each gold table's hour lives."""
    glue, database = boto3.client("glue", region_name=settings.aws_region), names(settings)["database"]
    partitions = {table: glue.get_partition(DatabaseName=database, TableName=f"gold_{table}",
                                            PartitionValues=[hour.date, hour.hour])["Partition"]
                  for table in TABLES if table != "quarantine_hourly"}  # fmt: skip
    return {table: partition["StorageDescriptor"]["Location"] for table, partition in partitions.items()}


@pytest.mark.timeout(900)
def test_a_rebuilt_hour_on_trino_replaces_its_partition_with_the_same_rows(
    city: dict, on_s3: dict, on_testbed: dict[str, str]
) -> None:
    """Gold built again on Athena's engine (Trino, dbt-trino): each table's hour moves whole to a new version, which
    the catalog points at, with the rows of the first build; the build tables leave nothing in staging."""
    settings, hour, environment = on_s3["settings"], city["hour"], on_s3["environment"]
    assert on_s3["ran"].returncode == 0
    before = gold_partitions(settings, hour)
    loaded = {table: warehouse_rows(settings, table) for table in TABLES}

    again = run_on_aws(environment, hour, "gold", "warehouse")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-5000:]
    after = gold_partitions(settings, hour)
    assert [table for table in after if after[table] == before[table]] == [], "every hour is a new version"
    storage = storage_for(settings.lake, settings)
    for table, location in after.items():
        assert storage.list_files(location.removeprefix(storage.uri("")), ".parquet"), table
        pd.testing.assert_frame_equal(warehouse_rows(settings, table), loaded[table], obj=table)
    assert storage.list_files("_staging") == [], "build files left in staging"
