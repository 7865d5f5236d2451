"""Write a simulated run straight into the raw zone, laid out and typed as the stream commits it.

For tests and benchmarks of the steps after the stream (Dagster assets, dashboard) that need a lake quickly
and without a broker: valid events become raw rows with synthetic Kafka coordinates (partition by key hash,
offsets in send order), one file per topic and event hour. Malformed events are left out, as the stream
would quarantine them; duplicates, late and out-of-order events are kept, as the stream would land them.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.city import City, Scenario
from simulator.faults import FaultInjector, FaultRates
from simulator.stream import messages
from smartcity.contracts import CONTRACTS

_ARROW_TYPES = {
    "string": pa.string(),
    "uuid": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "double": pa.float64(),
    "integer": pa.int64(),
}
_KAFKA_FIELDS = [
    pa.field("kafka_topic", pa.string()),
    pa.field("kafka_partition", pa.int32()),
    pa.field("kafka_offset", pa.int64()),
    pa.field("kafka_timestamp", pa.timestamp("us", tz="UTC")),
    pa.field("ingest_time", pa.timestamp("us", tz="UTC")),
]


def raw_schema(stream: str) -> pa.Schema:
    fields = [pa.field(f.name, _ARROW_TYPES[f.type]) for f in CONTRACTS[stream].fields]
    return pa.schema([*fields, *_KAFKA_FIELDS])


def _row(stream: str, topic: str, payload: dict, partition: int, offset: int, sent: datetime) -> dict:
    row = {name: payload.get(name) for name in CONTRACTS[stream].field_names}
    row["event_time"] = datetime.fromisoformat(payload["event_time"])
    return {
        **row,
        "kafka_topic": topic,
        "kafka_partition": partition,
        "kafka_offset": offset,
        "kafka_timestamp": sent,
        "ingest_time": sent,
    }


def write_raw_fixture(
    lake_root: Path,
    topics: dict[str, str],
    *,
    seed: int,
    start: datetime,
    max_events: int,
    scenario: Scenario | None = None,
    faults: FaultRates | None = None,
    partitions: int = 3,
    batch: int = 0,
) -> dict[tuple[str, str, str], int]:
    """Simulate ``max_events`` events into ``<lake_root>/raw``; returns rows per (stream, date, hour).

    Files are named as stream batch ``batch`` publishes them, so successive calls add files instead of
    replacing each other's.
    """
    city = City(scenario or Scenario(), seed, start)
    injector = FaultInjector(faults or FaultRates(), seed)
    offsets: dict[tuple[str, int], int] = defaultdict(int)
    rows: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for index, event in enumerate(messages(city, injector, max_events, lambda: False)):
        if not event.valid:
            continue
        topic = topics[event.stream]
        partition = zlib.crc32(event.key.encode()) % partitions
        payload = orjson.loads(event.value)
        sent = datetime.fromtimestamp(start.timestamp() + index / 1000, tz=UTC)
        row = _row(event.stream, topic, payload, partition, offsets[topic, partition], sent)
        offsets[topic, partition] += 1
        rows[event.stream, payload["event_time"][:10], payload["event_time"][11:13]].append(row)
    for (stream, day, hour), hour_rows in rows.items():
        directory = lake_root / "raw" / topics[stream] / f"event_date={day}" / f"event_hour={hour}"
        directory.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(hour_rows, schema=raw_schema(stream))
        pq.write_table(table, directory / f"part-b{batch:012d}.parquet", compression="zstd")
    return {key: len(value) for key, value in rows.items()}
