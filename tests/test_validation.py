"""The stream's contract validation in Spark, record by record: every quarantine reason, and the suspects
the fast pass flags that turn out valid. Runs the same two passes as the stream (``BatchWriter``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from smartcity.contracts import QUARANTINE_REASONS, TRAFFIC
from smartcity.settings import Settings
from spark_streaming.job import BatchWriter, spark_session
from spark_streaming.paths import StreamPaths
from spark_streaming.validation import PlausibleTimes, clean_rows, diagnose, fast_pass

pytestmark = pytest.mark.spark

VALID = {
    "event_id": "0b9a4c8e-2f1d-4e6a-9c3b-7d5e1f2a3b4c",
    "device_id": "camera-07",
    "event_time": "2026-11-27T08:15:30.123Z",
    "schema_version": 1,
    "latitude": 51.5,
    "longitude": -0.12,
    "camera_id": "camera-07",
    "vehicle_count": 12,
    "mean_speed_kmh": 42.5,
    "congestion_level": "moderate",
    "snapshot_key": "snapshots/camera-07/0815.jpg",
}


def payload(**changes: object) -> bytes:
    event = {key: value for key, value in {**VALID, **changes}.items() if value is not ...}
    return json.dumps(event).encode()


CASES: list[tuple[str, bytes, str | None]] = [
    ("valid", payload(), None),
    ("optional field absent", payload(mean_speed_kmh=...), None),
    ("optional field null", payload(mean_speed_kmh=None), None),  # a suspect (more keys than values), valid
    ("integer-valued double", payload(mean_speed_kmh=40), None),
    ("integer written as 12.0", payload(vehicle_count=12.0), None),  # a suspect for from_json, valid
    ("colon inside a string", payload(snapshot_key='a":b.jpg'), None),  # a suspect by key count, valid
    ("whitespace before colons", json.dumps(VALID, separators=(",", " :\t")).encode(), None),  # a suspect, valid
    ("compact", json.dumps(VALID, separators=(",", ":")).encode(), None),
    ("oversized", payload(snapshot_key="x" * 70_000), "oversized"),
    ("invalid utf-8", b'{"event_id": "\xff\xfe"}', "invalid_utf8"),
    ("invalid json", b'{"event_id": ', "invalid_json"),
    ("an array", b"[1, 2, 3]", "not_an_object"),
    ("missing field", payload(device_id=...), "missing_field"),
    ("number as text", payload(vehicle_count="12"), "wrong_type"),
    ("fractional integer", payload(vehicle_count=12.5), "wrong_type"),
    ("bad uuid", payload(event_id="not-a-uuid"), "invalid_format"),
    ("bad timestamp", payload(event_time="2026-11-27 08:15:30"), "invalid_format"),
    ("out of range", payload(latitude=123.0), "out_of_range"),
    ("not allowed", payload(congestion_level="gridlock"), "out_of_range"),
    ("unknown field", payload(colour="red"), "unknown_field"),
    ("nested unknown field", payload(extra={"a": 1}), "unknown_field"),
    ("unknown field, space before its colon only", payload()[:-1] + b', "colour" : "red"}', "unknown_field"),
    ("a field's name in another case", payload(Vehicle_count=12), "unknown_field"),
    ("unknown field with a null value", payload(colour=None), "unknown_field"),
    ("unknown field in place of an absent optional one", payload(mean_speed_kmh=..., colour=1), "unknown_field"),
    ("an object in an array", b"[" + payload() + b"]", "not_an_object"),
    ("a boolean for a string", payload(camera_id=True), "wrong_type"),
    ("an object for a string", payload(snapshot_key={"a": 1}), "wrong_type"),
    ("an array for a string", payload(device_id=[1]), "wrong_type"),
    ("a number for a string", payload(camera_id=7), "wrong_type"),
    ("a negative float for a string", payload(snapshot_key=-1.5e3), "wrong_type"),
    ("a boolean for a listed string", payload(congestion_level=False), "wrong_type"),
    ("a string that reads as a number", payload(camera_id="7"), None),  # a suspect, valid
    ("a string that reads as true", payload(snapshot_key="true"), None),  # a suspect, valid
    ("a string starting with digits", payload(snapshot_key="0815-07.jpg"), None),
    ("a clock decades back (a GPS week rollover)", payload(event_time="2007-04-13T08:15:30.123Z"), "implausible_time"),
    ("just before the first partition", payload(event_time="2025-12-31T23:59:59.999Z"), "implausible_time"),
    ("the first partition's first instant", payload(event_time="2026-01-01T00:00:00.000Z"), None),
    ("a replay of a past day", payload(event_time="2026-03-01T12:00:00.000Z"), None),
    ("a clock hours ahead of the tolerance", payload(event_time="2026-11-27T12:15:30.123Z"), "implausible_time"),
    ("ahead of ingestion, within the tolerance", payload(event_time="2026-11-27T09:29:59.999Z"), None),
]
TIMES = PlausibleTimes(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 11, 27, 9, 30, tzinfo=UTC))
"""A batch ingested at 08:30 on the day of ``VALID`` with an hour's tolerance, partitions from 2026."""


@pytest.fixture(scope="module")
def spark(settings: Settings) -> Iterator[SparkSession]:
    session = spark_session(settings, "validation-test")
    yield session
    session.stop()


def kafka_batch(spark: SparkSession, payloads: list[bytes]) -> DataFrame:
    """Rows shaped as the Kafka source gives them, on the traffic topic, offsets 0, 1, …"""
    return spark.createDataFrame(
        [(b"camera-07", value, "traffic_data", 0, offset) for offset, value in enumerate(payloads)],
        "key binary, value binary, topic string, partition int, offset long",
    ).withColumn("timestamp", F.current_timestamp())


def validate(spark: SparkSession, payloads: list[bytes]) -> DataFrame:
    """Kafka-shaped rows through the fast pass; suspects through the precise pass; one reason per offset."""
    batch = kafka_batch(spark, payloads)
    checked = fast_pass(batch, TRAFFIC, TIMES)
    diagnosed = diagnose(checked.where("_suspect").select(*batch.columns), TRAFFIC, TIMES)
    return clean_rows(checked, TRAFFIC).unionByName(diagnosed)


def test_every_record_gets_the_reason_the_contract_gives(spark: SparkSession) -> None:
    rows = validate(spark, [value for _, value, _ in CASES]).collect()
    reasons = {row.kafka_offset: row.reason for row in rows}
    assert len(rows) == len(CASES), "a record was lost or doubled between the two passes"
    assert {name: reasons[i] for i, (name, _, _) in enumerate(CASES)} == {name: r for name, _, r in CASES}
    assert {reason for _, _, reason in CASES} - {None} == set(QUARANTINE_REASONS)


def test_valid_records_keep_their_typed_values(spark: SparkSession) -> None:
    row = validate(spark, [payload(mean_speed_kmh=None), payload()]).orderBy("kafka_offset").collect()
    assert row[0].mean_speed_kmh is None and row[0].reason is None
    assert row[1].vehicle_count == 12 and row[1].mean_speed_kmh == 42.5
    assert row[1].event_time.isoformat().startswith("2026-11-27T08:15:30.123")


def test_a_batch_lands_as_one_file_per_hour_and_a_replay_lands_in_the_same_place(
    spark: SparkSession, settings: Settings, tmp_path: Path
) -> None:
    """The stream's batch writer. A suspect that proves valid joins the clean rows in the hour's one file, so a
    reader (or the lake sensor) can never list half of a batch's rows for an hour. The ingest time is the batch's
    timestamp in Spark's offset log, so a replay of the batch (after a crash) lands in the same ingest hour."""
    settings = settings.model_copy(
        update={"lake_uri": str(tmp_path / "lake"), "checkpoint_uri": str(tmp_path / "checkpoints")}
    )
    paths = StreamPaths.of(settings)
    planned = datetime(2026, 11, 27, 9, 59, 59, 500_000, tzinfo=UTC)
    (paths.checkpoint / "offsets").mkdir(parents=True)
    (paths.checkpoint / "offsets" / "7").write_text(
        f'v1\n{{"batchWatermarkMs":0,"batchTimestampMs":{int(planned.timestamp() * 1000)}}}\n{{}}'
    )
    wrong_clocks = [payload(event_time="2006-11-27T08:15:30.123Z"),  # before the first partition
                    payload(event_time="2026-11-28T10:00:00.000Z")]  # fmt: skip  # past planned + 24 h, the default
    batch = kafka_batch(spark, [payload(), payload(vehicle_count=12.0), b'{"event_id": ', *wrong_clocks])
    lake = tmp_path / "lake"
    for _attempt in range(2):  # the second call is a replay of batch 7
        BatchWriter(settings, paths)(batch, 7)
        hour = lake / "raw" / "traffic_data" / "event_date=2026-11-27" / "event_hour=08"
        assert [file.name for file in hour.iterdir()] == ["part-b000000000007.parquet"]
        raw = pq.read_table(hour / "part-b000000000007.parquet")
        assert sorted(raw.column("kafka_offset").to_pylist()) == [0, 1]
        quarantined = sorted((lake / "quarantine").rglob("*.parquet"))
        assert [file.relative_to(lake).as_posix() for file in quarantined] == [
            "quarantine/traffic_data/ingest_date=2026-11-27/ingest_hour=09/part-b000000000007.parquet"
        ]
        rows = pq.read_table(quarantined[0]).to_pylist()
        assert sorted(row["reason"] for row in rows) == ["implausible_time", "implausible_time", "invalid_json"]
        assert {row["ingest_time"] for row in rows + raw.to_pylist()} == {planned.replace(tzinfo=None)}  # UTC
    assert paths.lake.manifests()[0]["quarantine_rows"] == {"traffic_data/invalid_json": 1,
                                                             "traffic_data/implausible_time": 2}  # fmt: skip
    details = sorted(row["reason_detail"] for row in rows if row["reason"] == "implausible_time")
    assert details == [
        "event time 2006-11-27T08:15:30Z is before the first partition (2026-01-01)",
        "event time 2026-11-28T10:00:00Z is ahead of the latest accepted (2026-11-28T09:59:59Z)",
    ]
