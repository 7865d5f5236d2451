"""Table schemas of the lake's raw, quarantine and processed zones, derived from the data contracts.

The catalog registers these columns, the processing step writes them, and the schema-drift check compares
what the lake holds against them: one definition, so a renamed contract field fails loudly everywhere.
"""

from __future__ import annotations

from typing import NamedTuple

from smartcity.contracts import CONTRACTS, Contract
from smartcity.lake_layout import EVENT_PARTITION, INGEST_PARTITION

# Glue/Hive type names; the DuckDB catalog maps them to its own types.
CONTRACT_TYPES = {
    "string": "string",
    "uuid": "string",
    "timestamp": "timestamp",
    "double": "double",
    "integer": "bigint",
}


class Column(NamedTuple):
    name: str
    type: str
    comment: str
    required: bool = False


class TableSchema(NamedTuple):
    database: str
    name: str
    description: str
    columns: tuple[Column, ...]
    partition_keys: tuple[str, str] = EVENT_PARTITION

    @property
    def column_types(self) -> dict[str, str]:
        return {column.name: column.type for column in self.columns}


KAFKA_COLUMNS = (
    Column("kafka_topic", "string", "Kafka topic the record was read from", True),
    Column("kafka_partition", "int", "Kafka partition", True),
    Column("kafka_offset", "bigint", "offset within the partition", True),
    Column("kafka_timestamp", "timestamp", "Kafka record timestamp (producer append time)", True),
    Column("ingest_time", "timestamp", "when the stream committed the record to the lake", True),
)
SPEED_COLUMN = {"vehicle": "speed_kmh", "gps": "speed_kmh", "traffic": "mean_speed_kmh"}
POSITION_COLUMNS = (
    Column("zone", "string", "nearest corridor zone (junction) to the position", True),
    Column("grid_cell", "string", "0.01° grid cell of the position, 'lat_index:lon_index'", True),
)


def contract_columns(contract: Contract) -> tuple[Column, ...]:
    return tuple(
        Column(field.name, CONTRACT_TYPES[field.type], field.description, field.required) for field in contract.fields
    )


def raw_table(contract: Contract) -> TableSchema:
    return TableSchema(
        "raw",
        contract.stream,
        f"Raw zone: {contract.description} As committed by the stream, duplicates included.",
        (*contract_columns(contract), *KAFKA_COLUMNS),
    )


def enrichment_columns(contract: Contract) -> tuple[Column, ...]:
    """What the processing step adds to a stream's valid events."""
    added = [Column("hour_start", "timestamp", "start of the event hour (UTC)", True), *POSITION_COLUMNS]
    if contract.stream in SPEED_COLUMN:
        added.append(Column("speed_band", "string", "stopped, slow, moderate, fast or very_fast (km/h bands)"))
    if contract.stream == "emergency":
        added.append(Column("incident_duration_s", "double", "seconds since the incident was reported"))
    return tuple(added)


def processed_table(contract: Contract) -> TableSchema:
    return TableSchema(
        "processed",
        contract.stream,
        f"Processed zone: {contract.description} Typed, deduplicated on event_id, enriched.",
        (*contract_columns(contract), *KAFKA_COLUMNS, *enrichment_columns(contract)),
    )


QUARANTINE_COLUMNS = (
    *KAFKA_COLUMNS[:4],
    Column("kafka_key", "string", "Kafka message key (the device id), as text", False),
    Column("raw_text", "string", "the payload as UTF-8 text, when it decodes", False),
    Column("raw_bytes", "binary", "the payload exactly as received", True),
    Column("reason", "string", "why the record was quarantined (the first rule it broke)", True),
    Column("reason_detail", "string", "what exactly was wrong, for a person to read", False),
    Column("ingest_time", "timestamp", "when the stream committed the record to the quarantine", True),
)


def quarantine_table(contract: Contract) -> TableSchema:
    return TableSchema(
        "quarantine",
        contract.stream,
        f"Quarantine of `{contract.stream}` records that failed parsing or validation, with the reason, "
        "partitioned by ingest hour.",
        QUARANTINE_COLUMNS,
        INGEST_PARTITION,
    )


RAW_TABLES = {stream: raw_table(contract) for stream, contract in CONTRACTS.items()}
PROCESSED_TABLES = {stream: processed_table(contract) for stream, contract in CONTRACTS.items()}
QUARANTINE_TABLES = {stream: quarantine_table(contract) for stream, contract in CONTRACTS.items()}
