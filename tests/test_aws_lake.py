"""The lake on S3 (SeaweedFS) and the AWS Glue Data Catalog (moto): hours published as versions and switched in
the catalog in one call, so a reader going through the catalog never sees an hour half-replaced; superseded
versions kept for a grace period; closed hours compacted; tables evolved, never broken."""

from __future__ import annotations

import io
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster_aws.s3 import S3Resource

from smartcity.lake_layout import PROCESSED, RAW, VERSIONS, Hour, batch_file_name, hour_prefix, versions_prefix
from smartcity.settings import Settings
from smartcity_aws.access import names
from smartcity_aws.deploy import Deployment
from smartcity_aws.testbed import Testbed
from smartcity_dagster.assets.catalog import partition_entries
from smartcity_dagster.resources.catalog import SchemaDriftError
from smartcity_dagster.resources.glue import GlueDataCatalog
from smartcity_dagster.resources.s3_lake import RETIRED, S3Lake
from smartcity_dagster.tables import PROCESSED_TABLES, RAW_TABLES, Column
from tests.conftest import run_cli, settings_from

HOUR = Hour(datetime(2026, 11, 30, 10, tzinfo=UTC))


@pytest.fixture
def deployed(on_testbed: dict[str, str], aws_testbed: Testbed) -> Settings:
    """The test bed's deployment (its bucket, which its S3 identities name), applied; a database of this test's."""
    settings = settings_from({**on_testbed, **aws_testbed.platform_environment()})
    Deployment(settings).apply()
    return settings


def s3_lake(settings: Settings, **options: object) -> S3Lake:
    return S3Lake(root=f"{settings.lake}/{uuid.uuid4().hex[:8]}", s3=S3Resource(region_name=settings.aws_region),
                  **options)  # fmt: skip


def catalog(settings: Settings) -> GlueDataCatalog:
    return GlueDataCatalog(database=names(settings)["database"], region=settings.aws_region,
                           partitions_start="2026-01-01")  # fmt: skip


def parquet(rows: range, **columns: object) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"event_id": [str(n) for n in rows], "n": list(rows), **columns}), buffer)
    return buffer.getvalue()


def put(lake: S3Lake, key: str, body: bytes) -> None:
    lake.store.client.put_object(Bucket=lake.store.bucket, Key=lake.store.key(key), Body=body,
                                 ServerSideEncryption="AES256")  # fmt: skip


def stage(lake: S3Lake, files: dict[str, bytes]) -> list[tuple[str, str]]:
    staged = []
    for name, body in files.items():
        key = f"_staging/test-{uuid.uuid4().hex}/{name}"
        put(lake, key, body)
        staged.append((key, name))
    return staged


def rows_of(lake: S3Lake, files: list) -> list[int]:
    return sorted(n for file in files for n in pq.ParquetFile(lake.store.open_input(file.key)).read()["n"].to_pylist())


def test_a_rebuilt_hour_is_a_new_version_and_the_old_one_waits_out_its_grace(deployed: Settings) -> None:
    lake = s3_lake(deployed)
    lake.replace_hour(PROCESSED, "vehicle", HOUR, stage(lake, {"part-b000000000001-00000.parquet": parquet(range(5))}))
    first = lake.files_of(PROCESSED, "vehicle", [HOUR])[HOUR]
    assert "/v=" in first[0].key and rows_of(lake, first) == list(range(5))
    lake.add_to_hour(
        PROCESSED, "vehicle", HOUR, stage(lake, {"part-b000000000002-00001.parquet": parquet(range(5, 7))})
    )
    appended = lake.files_of(PROCESSED, "vehicle", [HOUR])[HOUR]
    assert {f.key.rsplit("/", 1)[0] for f in appended} == {first[0].key.rsplit("/", 1)[0]}, "appends join the version"
    lake.replace_hour(PROCESSED, "vehicle", HOUR, stage(lake, {"part-b000000000002-00000.parquet": parquet(range(7))}))
    rebuilt = lake.files_of(PROCESSED, "vehicle", [HOUR])[HOUR]
    assert rows_of(lake, rebuilt) == list(range(7)) and len(rebuilt) == 1
    old_keys = [f.key for f in appended]
    versions = versions_prefix(hour_prefix(PROCESSED, "vehicle", HOUR))
    assert set(lake.store.list_files(versions)) >= set(old_keys), "kept for its grace"
    assert lake.vacuum() == 0, "not before the grace period ends"
    expired = S3Lake(root=lake.root, s3=lake.s3, grace_minutes=0)
    for record in lake.store.list_files(RETIRED, ".json"):  # what the first lake retired, made due now
        retired = lake.store.read_json(record)
        lake.store.write_json(record, {**retired, "after": datetime.now(UTC).isoformat()})
    assert expired.vacuum() == len(old_keys) + 1  # the files and the old version's marker
    remaining = set(lake.store.list_files(versions))
    assert not remaining & set(old_keys) and {f.key for f in rebuilt} <= remaining


class CatalogReader:
    """Reads an hour as Athena does, again and again while a writer works: the partition's location from the catalog,
    then every Parquet file under it, subfolders included. Records each row count, and any not in ``allowed``."""

    def __init__(self, lake: S3Lake, glue: GlueDataCatalog, table: str, hour: Hour, allowed: set[int]) -> None:
        self.lake, self.glue, self.table, self.hour, self.allowed = lake, glue, table, hour, allowed
        self.client = boto3.client("glue", region_name=lake.region)
        self.seen: list[int] = []
        self.failures: list[tuple] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def location(self) -> str:
        values = [self.hour.date, self.hour.hour]
        partition = self.client.get_partition(DatabaseName=self.glue.database, TableName=self.table,
                                              PartitionValues=values)["Partition"]  # fmt: skip
        return partition["StorageDescriptor"]["Location"]

    def read(self) -> int:
        store = self.lake.store
        prefix = self.location().removeprefix(f"s3://{store.bucket}/")
        listed = store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix + "/")
        keys = [item["Key"] for item in listed.get("Contents", []) if item["Key"].endswith(".parquet")]
        total = sum(pq.ParquetFile(io.BytesIO(store.client.get_object(Bucket=store.bucket, Key=key)["Body"].read()))
                    .metadata.num_rows for key in keys)  # fmt: skip
        if total not in self.allowed:
            self.failures.append((prefix, keys, total))
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.append(self.read())

    def __enter__(self) -> CatalogReader:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_reader_through_the_catalog_never_sees_an_hour_half_replaced(deployed: Settings) -> None:
    lake, glue = s3_lake(deployed), catalog(deployed)
    table = PROCESSED_TABLES["vehicle"]
    location = lake.location(PROCESSED, "vehicle")

    def publish(count: int, files: int) -> None:
        per_file = count // files
        staged = stage(lake, {f"part-b{count:012d}-{i:05d}.parquet": parquet(range(i * per_file, (i + 1) * per_file))
                              for i in range(files)})  # fmt: skip
        lake.replace_hour(PROCESSED, "vehicle", HOUR, staged)
        glue.register_table(table, location, partition_entries(lake, lake.files_of(PROCESSED, "vehicle", [HOUR])),
                            [HOUR])  # fmt: skip

    publish(100, 1)
    with CatalogReader(lake, glue, "processed_vehicle", HOUR, allowed={100, 400}) as reader:
        publish(400, 8)  # eight copies, then the marker, then one call moves the partition
    assert reader.failures == [] and len(reader.seen) > 3, reader.failures
    assert reader.seen == sorted(reader.seen), "a read after the switch went back to the old hour"
    assert reader.read() == 400  # the reader's last read may have begun before the switch


def test_a_reader_through_the_catalog_never_sees_a_compacted_hour_twice(deployed: Settings) -> None:
    """Athena reads a location with its subfolders: the compacted version must not appear under the hour."""
    lake, glue = s3_lake(deployed, closed_after_days=2), catalog(deployed)
    closed = Hour((datetime.now(UTC) - timedelta(days=2, hours=2)).replace(minute=0, second=0, microsecond=0))
    for batch in range(8):
        put(lake, f"{hour_prefix(RAW, 'vehicle_data', closed)}/{batch_file_name(batch)}",
            parquet(range(batch * 50, batch * 50 + 50)))  # fmt: skip

    def register() -> None:  # as the maintenance job does after compacting
        entries = partition_entries(lake, lake.files_of(RAW, "vehicle_data", [closed]))
        glue.register_table(RAW_TABLES["vehicle"], lake.location(RAW, "vehicle_data"), entries, [closed])

    register()
    with CatalogReader(lake, glue, "raw_vehicle", closed, allowed={400}) as reader:
        assert [c.hour for c in lake.compact_landed_hours()] == [closed]
        register()
    assert reader.failures == [] and len(reader.seen) > 3, reader.failures
    assert f"/{VERSIONS}/" in reader.location() and reader.read() == 400


def test_a_closed_hour_of_a_landed_zone_is_compacted_into_a_version(deployed: Settings) -> None:
    lake = s3_lake(deployed, closed_after_days=2)
    closed = Hour((datetime.now(UTC) - timedelta(days=2, hours=2)).replace(minute=0, second=0, microsecond=0))
    opened = Hour(closed.start + timedelta(days=2))
    for hour in (closed, opened):
        for batch in range(3):
            key = f"{hour_prefix(RAW, 'vehicle_data', hour)}/{batch_file_name(batch)}"
            put(lake, key, parquet(range(batch * 10, batch * 10 + 10)))
    compacted = lake.compact_landed_hours()
    assert [(c.zone, c.table, c.hour) for c in compacted] == [(RAW, "vehicle_data", closed)], "only closed hours"
    files = lake.files_of(RAW, "vehicle_data", [closed])[closed]
    assert [f.name for f in files] == ["compacted-b000000000002.parquet"] and "/v=" in files[0].key
    assert rows_of(lake, files) == list(range(30))
    assert len(lake.files_of(RAW, "vehicle_data", [opened])[opened]) == 3
    assert lake.compact_landed_hours() == [], "a compacted hour is not compacted again"


def test_the_glue_catalog_adds_a_column_refuses_a_type_change_and_drops_old_hours(deployed: Settings) -> None:
    glue = catalog(deployed)
    table = RAW_TABLES["weather"]
    location = f"s3://{deployed.lake_bucket}/lake/raw/weather_data"
    assert glue.registered_columns("raw", "weather") is None
    glue.register_table(table, location, [], [])
    wider = table._replace(columns=(*table.columns, Column("uv_index", "double", "new optional field")))
    assert glue.register_table(wider, location, [], []) == ["uv_index"]
    assert glue.registered_columns("raw", "weather")["uv_index"] == "double"
    changed = wider._replace(columns=tuple(c._replace(type="string") if c.name == "aqi" else c for c in wider.columns))
    with pytest.raises(SchemaDriftError, match="column 'aqi' is registered as bigint but is now string"):
        glue.register_table(changed, location, [], [])
    client = boto3.client("glue", region_name=deployed.aws_region)
    versions = client.get_table_versions(DatabaseName=glue.database, TableName="raw_weather")["TableVersions"]
    assert len(versions) >= 2, "UpdateTable keeps the table's versions"
    parameters = client.get_table(DatabaseName=glue.database, Name="raw_weather")["Table"]["Parameters"]
    assert parameters["projection.event_hour.range"] == "0,23" and parameters["projection.enabled"] == "false"


def test_the_cost_report_reads_sizes_and_storage_classes_from_s3(on_testbed: dict[str, str], aws_testbed: Testbed,
                                                                  deployed: Settings) -> None:  # fmt: skip
    lake = s3_lake(deployed)
    for batch in range(2):
        put(lake, f"{hour_prefix(RAW, 'vehicle_data', HOUR)}/{batch_file_name(batch)}", b"x" * 1000)
    lake.store.client.put_object(Bucket=lake.store.bucket, Body=b"y" * 3000, ServerSideEncryption="AES256",
                                 Key=lake.store.key(f"{hour_prefix(PROCESSED, 'vehicle', HOUR)}/part-0.parquet"),
                                 StorageClass="STANDARD_IA")  # fmt: skip
    environment = {**on_testbed, **aws_testbed.platform_environment(), "SMARTCITY_LAKE_URI": lake.root}
    result = run_cli("aws", "cost", "--json", env=environment)
    assert result.returncode == 0, result.stderr
    usage = {(u["zone"], u["storage_class"]): (u["objects"], u["bytes"]) for u in json.loads(result.stdout)["usage"]}
    assert usage == {("raw", "STANDARD"): (2, 2000), ("processed", "STANDARD_IA"): (1, 3000)}
    processed_ia = next(u for u in json.loads(result.stdout)["usage"] if u["zone"] == "processed")
    assert processed_ia["monthly_usd"] == pytest.approx(128 * 2**10 / 2**30 * 0.0125)  # billed as 128 KB


def test_retention_deletes_old_hours_with_their_versions_and_keeps_the_rest(deployed: Settings) -> None:
    lake = s3_lake(deployed)
    old = Hour(datetime(2026, 1, 5, 3, tzinfo=UTC))
    for hour in (old, HOUR):
        for batch in range(2):
            put(lake, f"{hour_prefix(RAW, 'vehicle_data', hour)}/{batch_file_name(batch)}", parquet(range(10)))
        lake.replace_hour(
            PROCESSED, "vehicle", hour, stage(lake, {"part-b000000000001-00000.parquet": parquet(range(5))})
        )
    lake.replace_hour(RAW, "vehicle_data", old, stage(lake, {"compacted-b000000000001.parquet": parquet(range(20))}))
    lake.delete_before(Hour(datetime(2026, 1, 6, tzinfo=UTC)))
    for zone, table in ((RAW, "vehicle_data"), (PROCESSED, "vehicle")):
        directory = hour_prefix(zone, table, old)
        assert lake.store.list_files(directory) == lake.store.list_files(versions_prefix(directory)) == [], zone
    kept = lake.files_of(RAW, "vehicle_data", [HOUR])[HOUR] + lake.files_of(PROCESSED, "vehicle", [HOUR])[HOUR]
    assert rows_of(lake, kept) == sorted([*range(10), *range(10), *range(5)])
