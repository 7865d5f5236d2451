"""The Glue ETL step in PySpark: one stream's raw hours → typed, deduplicated, enriched processed hours.

Each hour is written to a staging directory and swapped in with :func:`smartcity.atomic.replace_directory`, so
a reader of the processed zone sees an hour's old files or its new ones, never a mix. The input is the exact
list of raw files taken before reading, so the counts reported for reconciliation describe what was read.
"""

from __future__ import annotations

import math
import shutil
import uuid
from datetime import timedelta
from functools import reduce
from pathlib import Path

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from smartcity.atomic import replace_directory
from smartcity.zones import ZONES
from smartcity_dagster.partitions import Hour
from smartcity_dagster.tables import PROCESSED_TABLES, SPEED_COLUMN

GRID_DEGREES = 0.01
# Upper bounds (km/h, exclusive) of the speed bands; faster is "very_fast".
SPEED_BANDS = ((5.0, "stopped"), (30.0, "slow"), (60.0, "moderate"), (100.0, "fast"))
# How far back the emergency table looks for the "reported" event of an incident resolved in the window.
INCIDENT_LOOKBACK = timedelta(hours=24)


def hour_files(zone_dir: Path, hours: list[Hour]) -> dict[Hour, list[Path]]:
    """The Parquet files of each hour directory that exists, listed once."""
    listed = {hour: sorted((zone_dir / hour.relative_dir).glob("*.parquet")) for hour in hours}
    return {hour: files for hour, files in listed.items() if files}


def deduplicate(frame: DataFrame) -> DataFrame:
    """Keep the first Kafka record of each event_id (deterministic: by Kafka time, partition, offset)."""
    first = Window.partitionBy("event_id").orderBy("kafka_timestamp", "kafka_partition", "kafka_offset")
    return frame.withColumn("_n", F.row_number().over(first)).where("_n = 1").drop("_n")


def nearest_zone() -> SparkColumn:
    """The name of the zone closest to (latitude, longitude), by equirectangular distance."""
    candidates = [
        F.struct(
            (
                (F.col("latitude") - zone.latitude) ** 2
                + ((F.col("longitude") - zone.longitude) * math.cos(math.radians(zone.latitude))) ** 2
            ).alias("d"),
            F.lit(zone.name).alias("name"),
        )
        for zone in ZONES
    ]
    return F.least(*candidates).getField("name")


def grid_cell() -> SparkColumn:
    return F.concat_ws(
        ":",
        F.floor(F.col("latitude") / GRID_DEGREES).cast("string"),
        F.floor(F.col("longitude") / GRID_DEGREES).cast("string"),
    )


def speed_band(speed: str) -> SparkColumn:
    bands = reduce(
        lambda chain, band: chain.when(F.col(speed) < band[0], band[1]),
        SPEED_BANDS[1:],
        F.when(F.col(speed) < SPEED_BANDS[0][0], SPEED_BANDS[0][1]),
    )
    return F.when(F.col(speed).isNull(), None).otherwise(bands.otherwise("very_fast"))


def incident_durations(events: DataFrame, history: DataFrame | None) -> DataFrame:
    """Seconds from each incident's "reported" event (found in the window or the lookback) to each event."""
    columns = ["incident_id", "status", "event_time"]
    reported_source = events.select(*columns)
    if history is not None:
        reported_source = reported_source.unionByName(history.select(*columns))
    reported = (
        reported_source.where(F.col("status") == "reported")
        .groupBy("incident_id")
        .agg(F.min("event_time").alias("_reported_at"))
    )
    seconds = F.unix_micros("event_time") - F.unix_micros("_reported_at")
    return (
        events.join(reported, "incident_id", "left")
        .withColumn("incident_duration_s", seconds.cast("double") / 1e6)
        .drop("_reported_at")
    )


def transform(stream: str, frame: DataFrame, history: DataFrame | None = None) -> DataFrame:
    """Deduplicate and enrich one stream's raw rows into the processed table's columns."""
    table = PROCESSED_TABLES[stream]
    enriched = deduplicate(frame).select(
        "*",
        F.date_trunc("hour", "event_time").alias("hour_start"),
        nearest_zone().alias("zone"),
        grid_cell().alias("grid_cell"),
    )
    if stream in SPEED_COLUMN:
        enriched = enriched.withColumn("speed_band", speed_band(SPEED_COLUMN[stream]))
    if stream == "emergency":
        enriched = incident_durations(enriched, history)
    return enriched.select(*[column.name for column in table.columns], "event_date", "event_hour")


# SQL settings the step depends on, set on whatever session it is given (one may already exist in the process).
SESSION_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
}


def read_raw(spark: SparkSession, raw_dir: Path, files: list[Path]) -> DataFrame:
    """Exactly these raw files, with their event_date/event_hour partition columns as strings."""
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)
    return spark.read.option("basePath", str(raw_dir)).parquet(*[str(file) for file in files])


def _history(spark: SparkSession, raw_dir: Path, stream: str, hours: list[Hour]) -> DataFrame | None:
    if stream != "emergency":
        return None
    steps = int(INCIDENT_LOOKBACK / timedelta(hours=1))
    earlier = [Hour(hours[0].start - timedelta(hours=i)) for i in range(steps, 0, -1)]
    files = [file for listed in hour_files(raw_dir, earlier).values() for file in listed]
    return deduplicate(read_raw(spark, raw_dir, files)) if files else None


def process_hours(
    spark: SparkSession, lake_root: Path, topic: str, stream: str, hours: list[Hour], inputs: dict[Hour, list[Path]]
) -> dict[Hour, int]:
    """Rebuild the processed hours of one stream from exactly the raw files ``inputs``; returns files per hour.

    The caller lists the raw files once and checks against the same list: the stream may publish more while
    this runs (the lake sensor then requests the hour again). Hours without raw data lose their processed
    directory, so running the step twice, or after a raw hour was compacted, always yields the same rows.
    """
    raw_dir = lake_root / "raw" / topic
    target_dir = lake_root / "processed" / stream
    stage = lake_root / "_staging" / f"processed-{stream}-{uuid.uuid4().hex}"
    try:
        if inputs:
            frame = read_raw(spark, raw_dir, [file for files in inputs.values() for file in files])
            history = _history(spark, raw_dir, stream, hours)
            processed = transform(stream, frame, history).repartition("event_date", "event_hour")
            processed.sortWithinPartitions("event_time", "event_id").write.partitionBy(
                "event_date", "event_hour"
            ).parquet(str(stage))
        files = {}
        for hour in hours:
            staged = stage / hour.relative_dir
            written = _tidy(staged)
            files[hour] = len(written)
            replace_directory(staged if written else None, target_dir / hour.relative_dir)
        return files
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _tidy(staged: Path) -> list[Path]:
    """Keep only the staged hour's Parquet files (no checksums), named part-NNNNN.parquet; return them."""
    if not staged.exists():
        return []
    for extra in [path for path in staged.iterdir() if path.suffix != ".parquet"]:
        extra.unlink()
    files = sorted(staged.glob("*.parquet"))
    return [file.rename(staged / f"part-{index:05d}.parquet") for index, file in enumerate(files)]
