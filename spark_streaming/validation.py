"""Spark expressions derived from the data contracts: parse Kafka payloads, type them, or say why not.

Two passes keep this both exact and fast. The fast pass parses every payload with ``from_json`` against the
contract's typed schema and flags as *suspect* any record that is oversized, not UTF-8, not parseable into
the schema (its corrupt-record column is set; ``from_json`` alone would give a row of nulls), missing a
required field, out of range, badly formatted or carrying unknown fields. Only suspects take the precise
pass: parsed as VARIANT (``try_parse_json``), which keeps JSON token types, each check of
:mod:`smartcity.contracts` runs in the order of ``QUARANTINE_REASONS`` and the first failure becomes the
record's ``reason`` with a human ``reason_detail``; a suspect that passes every check is valid after all.

Last comes the event time the platform can place (:class:`PlausibleTimes`): not before the first hourly
partition, and not further ahead of the batch's ingestion than a tolerance. A device with a wrong clock (a GPS
week rollover puts it decades back) otherwise lands in an hour no partition or sensor will ever look at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from smartcity.contracts import (
    MAX_PAYLOAD_BYTES,
    QUARANTINE_REASONS,
    TIMESTAMP_PATTERN,
    UUID_PATTERN,
    Contract,
    Field,
)

SPARK_TYPES = {"string": "string", "uuid": "string", "timestamp": "timestamp", "double": "double", "integer": "bigint"}
_NUMERIC = r"^(BIGINT|INT|SMALLINT|TINYINT|DOUBLE|FLOAT|DECIMAL\(\d+,\d+\))$"
_TIMESTAMP_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSX"
EVENT_TIME = "event_time"
"""Every contract's event time: what the raw zone is partitioned by."""
KAFKA_COLUMNS = ("kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp")
_NOT_A_STRING = r"^([\[{]|true$|false$|-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$)"
"""The text ``from_json`` makes of an object, an array, a boolean or a number."""


@dataclass(frozen=True)
class PlausibleTimes:
    """The event times a batch accepts: from the first partition's start to its ingestion plus the tolerance."""

    earliest: datetime
    latest: datetime

    def outside(self, event_time: Column) -> Column:
        return event_time.isNotNull() & ((event_time < F.lit(self.earliest)) | (event_time > F.lit(self.latest)))

    def detail(self, event_time: Column) -> Column:
        shown = F.date_format(event_time, "yyyy-MM-dd'T'HH:mm:ss'Z'")
        return F.when(
            event_time < F.lit(self.earliest),
            F.concat(F.lit("event time "), shown, F.lit(f" is before the first partition ({self.earliest:%Y-%m-%d})")),
        ).otherwise(
            F.concat(F.lit("event time "), shown,
                     F.lit(f" is ahead of the latest accepted ({self.latest:%Y-%m-%dT%H:%M:%SZ})")))  # fmt: skip


def _kafka_metadata() -> list[Column]:
    """The Kafka source's coordinates under their lake names; the same in valid and quarantined rows."""
    return [
        F.col("topic").alias("kafka_topic"),
        F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("key").cast("string").alias("kafka_key"),
    ]


def _raw(field: Field) -> str:
    return f"_raw_{field.name}"


def _type(field: Field) -> str:
    return f"_type_{field.name}"


def _is_present(field: Field) -> str:
    return f"_present_{field.name}"


def _is_typed(field: Field) -> str:
    return f"_typed_{field.name}"


def _present(field: Field) -> Column:
    return F.col(_type(field)).isNotNull() & (F.col(_type(field)) != "VOID")


def _type_ok(field: Field) -> Column:
    kind = F.col(_type(field))
    if field.type in ("string", "uuid", "timestamp"):
        return kind == "STRING"
    numeric = kind.rlike(_NUMERIC)
    if field.type == "integer":
        value = F.expr(f"try_variant_get({_raw(field)}, '$', 'double')")
        return numeric & (value == F.floor(value))
    return numeric


def _typed(field: Field) -> Column:
    if field.type == "timestamp":
        return F.try_to_timestamp(F.expr(f"variant_get({_raw(field)}, '$', 'string')"), F.lit(_TIMESTAMP_FORMAT))
    return F.expr(f"try_variant_get({_raw(field)}, '$', '{SPARK_TYPES[field.type]}')")


def _format_ok(field: Field) -> Column | None:
    value = F.expr(f"variant_get({_raw(field)}, '$', 'string')")
    if field.type == "uuid":
        return value.rlike(UUID_PATTERN)
    if field.type == "timestamp":
        return value.rlike(TIMESTAMP_PATTERN) & _typed(field).isNotNull()
    return None


def _range_ok(field: Field) -> Column | None:
    value = F.col(field.name)
    conditions = []
    if field.minimum is not None:
        conditions.append(value >= F.lit(field.minimum))
    if field.maximum is not None:
        conditions.append(value <= F.lit(field.maximum))
    if field.allowed is not None:
        conditions.append(value.isin(*field.allowed))
    return reduce(Column.__and__, conditions) if conditions else None


def _failures(fields: list[Field], condition: object) -> Column:
    """Comma-separated names of the fields for which ``condition(field)`` is false (NULL when none)."""
    names = [F.when(~check, F.lit(field.name)) for field in fields if (check := condition(field)) is not None]
    joined = F.concat_ws(", ", *names) if names else F.lit("")
    return F.when(joined != "", joined)


def diagnose(batch: DataFrame, contract: Contract, times: PlausibleTimes) -> DataFrame:
    """The precise pass: typed columns, Kafka metadata, ``reason`` and ``reason_detail`` (NULL when valid)."""
    fields = list(contract.fields)
    parsed = batch.select(
        "*",
        F.expr("is_valid_utf8(value)").alias("_utf8"),
        # Oversized payloads are not parsed at all: their reason is known and parsing them is costly.
        F.expr(f"try_parse_json(if(length(value) > {MAX_PAYLOAD_BYTES}, NULL, cast(value as string)))").alias("_v"),
    )
    extracted = parsed.select(
        "*",
        F.expr("schema_of_variant(_v)").alias("_shape"),
        F.expr("json_object_keys(cast(_v as string))").alias("_keys"),
        *[F.expr(f"variant_get(_v, '$.{field.name}')").alias(_raw(field)) for field in fields],
    ).select("*", *[F.expr(f"schema_of_variant({_raw(field)})").alias(_type(field)) for field in fields])
    # Each intermediate result is a column of its own, referenced by name below: the checks reuse them instead
    # of repeating their expression trees, which keeps the plan small and quick to optimise in every batch.
    flagged = extracted.select(
        "*",
        *[_present(f).alias(_is_present(f)) for f in fields],
        *[(_present(f) & _type_ok(f)).alias(_is_typed(f)) for f in fields],
    )
    typed = flagged.select("*", *[F.when(F.col(_is_typed(f)), _typed(f)).alias(f.name) for f in fields])
    present = {f.name: F.col(_is_present(f)) for f in fields}
    unknown = F.array_except(F.col("_keys"), F.array(*[F.lit(f.name) for f in fields]))
    failures = typed.select(
        "*",
        _failures([f for f in fields if f.required], lambda f: present[f.name]).alias("_missing"),
        _failures(fields, lambda f: ~present[f.name] | F.col(_is_typed(f))).alias("_wrong_type"),
        _failures(fields, lambda f: None if _format_ok(f) is None else ~present[f.name] | _format_ok(f)).alias(
            "_bad_format"
        ),
        _failures(fields, lambda f: None if _range_ok(f) is None else F.col(f.name).isNull() | _range_ok(f)).alias(
            "_out_of_range"
        ),
        unknown.alias("_unknown"),
    )
    size = F.length("value")
    checks = {
        "oversized": (size > MAX_PAYLOAD_BYTES,
                      F.format_string(f"payload of %d bytes exceeds {MAX_PAYLOAD_BYTES}", size)),
        "invalid_utf8": (~F.col("_utf8"), F.lit("payload is not valid UTF-8")),
        "invalid_json": (F.col("_v").isNull(), F.lit("payload is not valid JSON")),
        "not_an_object": (~F.col("_shape").startswith("OBJECT"),
                          F.concat(F.lit("expected a JSON object, got "), F.col("_shape"))),
        "missing_field": _check(F.col("_missing"), "missing required field(s): "),
        "wrong_type": _check(F.col("_wrong_type"), "wrong JSON type for: "),
        "invalid_format": _check(F.col("_bad_format"), "invalid format of: "),
        "out_of_range": _check(F.col("_out_of_range"), "out of range or not allowed: "),
        "unknown_field": (F.size("_unknown") > 0,
                          F.concat(F.lit("unknown field(s): "), F.array_join("_unknown", ", "))),
        "implausible_time": (times.outside(F.col(EVENT_TIME)), times.detail(F.col(EVENT_TIME))),
    }  # fmt: skip
    assert tuple(checks) == QUARANTINE_REASONS
    reason = F.coalesce(*[F.when(condition, F.lit(name)) for name, (condition, _) in checks.items()])
    detail = F.coalesce(*[F.when(condition, text) for condition, text in checks.values()])
    return failures.select(
        *[F.col(f.name) for f in fields],
        *_kafka_metadata(),
        F.when(F.col("_utf8"), F.col("value").cast("string")).alias("raw_text"),
        F.col("value").alias("raw_bytes"),
        reason.alias("reason"),
        detail.alias("reason_detail"),
    )


def _fast_schema(contract: Contract) -> str:
    columns = [f"{f.name} {'string' if f.type == 'timestamp' else SPARK_TYPES[f.type]}" for f in contract.fields]
    return ", ".join([*columns, "_corrupt string"])


def _maybe_not_a_string(value: Column) -> Column:
    """True when a string field's text could be another JSON value: ``from_json`` gives a string field any value
    as its text (``true``, ``12``, ``{"a": 1}``). The precise pass tells a real string from those.

    One pattern, not a cheaper-looking mix of prefix tests: each expression here is repeated per free-text field
    in the fast pass's generated code, and a larger method measured slower (see docs/benchmarks.md)."""
    return value.isNotNull() & value.rlike(_NOT_A_STRING)


def fast_pass(batch: DataFrame, contract: Contract, times: PlausibleTimes) -> DataFrame:
    """Typed columns from ``from_json`` plus a ``_suspect`` flag for anything the precise pass must look at.

    ``batch`` has the Kafka source's columns: key, value, topic, partition, offset, timestamp.
    """
    fields = list(contract.fields)
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}
    parsed = batch.select(
        "*",
        F.from_json(F.col("value").cast("string"), _fast_schema(contract), options).alias("_j"),
        F.expr("json_object_keys(cast(value as string))").alias("_keys"),
    )
    typed = parsed.select(
        "*",
        *[
            (F.try_to_timestamp(F.col(f"_j.{f.name}"), F.lit(_TIMESTAMP_FORMAT)) if f.type == "timestamp"
             else F.col(f"_j.{f.name}")).alias(f.name)
            for f in fields
        ],
    )  # fmt: skip
    problems = [
        F.length("value") > MAX_PAYLOAD_BYTES,
        ~F.expr("is_valid_utf8(value)"),
        F.col("_j._corrupt").isNotNull(),
        F.col("_keys").isNull(),
        # More keys than known field names among them: an unknown field (or a repeated one, which the precise
        # pass then judges). Unlike array_except, array_contains is compiled by codegen: a tenth of the stream's CPU.
        F.size("_keys") > reduce(Column.__add__, [F.array_contains("_keys", f.name).cast("int") for f in fields]),
        times.outside(F.col(EVENT_TIME)),
    ]
    for field in fields:
        if field.required:
            problems.append(F.col(field.name).isNull())
        if (in_range := _range_ok(field)) is not None:
            problems.append(F.col(field.name).isNotNull() & ~in_range)
        elif field.type == "string":  # a listed value cannot be another JSON value; a free text could
            problems.append(_maybe_not_a_string(F.col(field.name)))
        if field.type in ("uuid", "timestamp"):
            pattern = UUID_PATTERN if field.type == "uuid" else TIMESTAMP_PATTERN
            problems.append(F.col(f"_j.{field.name}").isNotNull() & ~F.col(f"_j.{field.name}").rlike(pattern))
    suspect = reduce(Column.__or__, [F.coalesce(problem, F.lit(True)) for problem in problems])
    return typed.select(*batch.columns, *[f.name for f in fields], suspect.alias("_suspect"))


def clean_rows(checked: DataFrame, contract: Contract) -> DataFrame:
    """The records the fast pass found nothing wrong with, in :func:`diagnose`'s output shape."""
    return checked.where(~F.col("_suspect")).select(
        *[f.name for f in contract.fields],
        *_kafka_metadata(),
        F.lit(None).cast("string").alias("raw_text"),
        F.lit(None).cast("binary").alias("raw_bytes"),
        F.lit(None).cast("string").alias("reason"),
        F.lit(None).cast("string").alias("reason_detail"),
    )


def _check(failed_fields: Column, prefix: str) -> tuple[Column, Column]:
    return failed_fields.isNotNull(), F.concat(F.lit(prefix), failed_fields)


def valid_rows(validated: DataFrame, contract: Contract, ingest_time: datetime) -> DataFrame:
    """The raw-zone rows: valid records with Kafka metadata, the batch's ingest time and their event-hour partition."""
    names = [field.name for field in contract.fields]
    return validated.where(F.col("reason").isNull()).select(
        *names,
        *KAFKA_COLUMNS,
        F.lit(ingest_time).alias("ingest_time"),
        F.date_format(EVENT_TIME, "yyyy-MM-dd").alias("event_date"),
        F.date_format(EVENT_TIME, "HH").alias("event_hour"),
    )


def quarantined_rows(validated: DataFrame, ingest_time: datetime) -> DataFrame:
    """The quarantine rows: the raw payload (text where it decodes), why, and where in Kafka it came from.

    Partitioned by ingest hour (a malformed record may have no event time). ``ingest_time`` is the batch's own
    timestamp from Spark's offset log, the same in a replay of the batch, so a replay lands in the same hour.
    """
    ingested = F.lit(ingest_time)
    return validated.where(F.col("reason").isNotNull()).select(
        *KAFKA_COLUMNS, "kafka_key", "raw_text", "raw_bytes", "reason", "reason_detail",
        ingested.alias("ingest_time"),
        F.date_format(ingested, "yyyy-MM-dd").alias("ingest_date"),
        F.date_format(ingested, "HH").alias("ingest_hour"),
    )  # fmt: skip
