"""The Glue ETL step in PySpark: one stream's raw hours → typed, deduplicated, enriched processed hours.

An hour is processed **incrementally**: its processed files are named after the newest stream batch they
include (``part-b<batch>-NNNNN.parquet``), so a run reads only the raw files of later batches, drops the events
the hour already holds, and adds one file with an atomic rename. Duplicates of an event share its Kafka key and
so its partition, so the copy already processed is the one a full rebuild would keep too. An hour is rebuilt
from all its raw files when asked to, when its files carry no batch (an older layout), or when compaction merged
processed and unprocessed batches into one raw file, and always for the emergency stream, whose incident
durations depend on events that may arrive later; the rebuilt hour is staged and swapped in with
:func:`smartcity.atomic.replace_directory`. Either way a reader sees an hour's old files or its new ones, never a
mix, and the input is the exact list of raw files taken before reading, so the counts reported for
reconciliation describe what was read.
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import reduce
from pathlib import Path
from typing import NamedTuple

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from smartcity.atomic import replace_directory
from smartcity.zones import ZONES
from smartcity_dagster.partitions import Hour
from smartcity_dagster.resources.lake import batch_of
from smartcity_dagster.tables import PROCESSED_TABLES, SPEED_COLUMN

GRID_DEGREES = 0.01
# Upper bounds (km/h, exclusive) of the speed bands; faster is "very_fast".
SPEED_BANDS = ((5.0, "stopped"), (30.0, "slow"), (60.0, "moderate"), (100.0, "fast"))
# How far back the emergency table looks for the "reported" event of an incident resolved in the window.
INCIDENT_LOOKBACK = timedelta(hours=24)
ALWAYS_REBUILT = {"emergency"}  # streams whose processed rows depend on other events of the hour


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


class HourPlan(NamedTuple):
    """What one run does to one processed hour."""

    inputs: list[Path]  # raw files to read
    lookback: list[Path]  # raw files of the hour processed before (the incident lookback reads them)
    append: bool  # add files to the processed hour, instead of replacing the hour
    newest: int  # the newest raw batch the hour includes afterwards
    first_index: int  # number of the first file added (after the hour's existing files)


def plan_hour(raw: list[Path], processed: list[Path], rebuild: bool) -> HourPlan:
    """Append the raw files of batches the processed hour does not include yet, or rebuild the hour.

    The newest included batch is read again (its events already processed are dropped): the previous run may
    have listed the hour while that batch was being published. The stream writes one file per batch and hour,
    so a compacted file up to that batch holds nothing new, and one beyond it forces a rebuild.
    """
    newest = max(batch_of(file.name) or 0 for file in raw)
    batches = [batch_of(file.name) for file in processed]
    if rebuild or not batches or None in batches:
        return HourPlan(raw, [], False, newest, 0)
    included = max(batches)
    new = [
        file
        for file in raw
        if (batch := batch_of(file.name) or 0) > included or (batch == included and file.name.startswith("part-"))
    ]
    if any(file.name.startswith("compacted-") for file in new):
        return HourPlan(raw, [], False, newest, 0)
    return HourPlan(new, raw, True, max(newest, included), len(processed))


def _history(
    spark: SparkSession, raw_dir: Path, stream: str, hours: list[Hour], processed_before: list[Path]
) -> DataFrame | None:
    """Earlier raw events an incident's "reported" event may be among: the lookback hours and, for hours
    processed incrementally, all their raw files (the events read now skip those processed before)."""
    if stream != "emergency":
        return None
    steps = int(INCIDENT_LOOKBACK / timedelta(hours=1))
    earlier = [Hour(hours[0].start - timedelta(hours=i)) for i in range(steps, 0, -1)]
    files = [file for listed in hour_files(raw_dir, earlier).values() for file in listed] + processed_before
    return deduplicate(read_raw(spark, raw_dir, files)) if files else None


def _not_yet_processed(spark: SparkSession, frame: DataFrame, processed: list[Path]) -> DataFrame:
    """``frame`` without the events the ``processed`` files already hold."""
    if not processed:
        return frame
    held = (
        spark.read.parquet(*map(str, processed))
        .select("event_id")
        .join(frame.select("event_id"), "event_id", "left_semi")
    )
    return frame.join(held, "event_id", "left_anti")


def process_hours(
    session: Callable[[], SparkSession],
    lake_root: Path,
    topic: str,
    stream: str,
    hours: list[Hour],
    inputs: dict[Hour, list[Path]],
    rebuild: bool = False,
) -> dict[Hour, str]:
    """Bring the processed hours of one stream up to the raw files ``inputs``; returns what happened per hour
    ("appended", "rebuilt", "unchanged" or "removed").

    The caller lists the raw files once and checks against the same list: the stream may publish more while
    this runs (the lake sensor then requests the hour again). Hours without raw data lose their processed
    directory, so running the step twice, or after a raw hour was compacted, always yields the same rows.
    ``session`` is only called (starting Spark) when there is something to read.
    """
    raw_dir = lake_root / "raw" / topic
    target_dir = lake_root / "processed" / stream
    # An incident's duration depends on its "reported" event, which may arrive in a later batch than the events
    # already processed: emergency hours (a few events a second) are always rebuilt, so no duration goes stale.
    rebuild = rebuild or stream in ALWAYS_REBUILT
    held = hour_files(target_dir, list(inputs))
    plans = {hour: plan_hour(files, held.get(hour, []), rebuild) for hour, files in inputs.items()}
    stage = lake_root / "_staging" / f"processed-{stream}-{uuid.uuid4().hex}"
    try:
        if reading := [file for plan in plans.values() for file in plan.inputs]:
            spark = session()
            frame = read_raw(spark, raw_dir, reading)
            # an event id always falls in one hour: only the appended hours' files can hold it already
            appended = [file for hour, plan in plans.items() if plan.append for file in held[hour]]
            frame = _not_yet_processed(spark, frame, appended)
            lookback = [file for plan in plans.values() for file in plan.lookback]
            history = _history(spark, raw_dir, stream, hours, lookback)
            processed = transform(stream, frame, history).repartition("event_date", "event_hour")
            processed.sortWithinPartitions("event_time", "event_id").write.partitionBy(
                "event_date", "event_hour"
            ).parquet(str(stage))
        return {hour: _publish(stage / hour.relative_dir, target_dir / hour.relative_dir, plans.get(hour))
                for hour in hours}  # fmt: skip
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(staged: Path, target: Path, plan: HourPlan | None) -> str:
    """Move one staged hour into the processed zone as ``plan`` says; return what happened."""
    if plan is None:  # no raw data (any more): no processed data either
        existed = target.exists()
        replace_directory(None, target)
        return "removed" if existed else "unchanged"
    written = _tidy(staged, plan.newest, plan.first_index)
    if not plan.append:
        replace_directory(staged if written else None, target)
        return "rebuilt"
    for file in written:  # one file per hour and run (repartitioned by hour): a single atomic rename
        os.replace(file, target / file.name)
    return "appended" if written else "unchanged"


def _tidy(staged: Path, newest: int, first_index: int) -> list[Path]:
    """Keep only the staged hour's Parquet files (no checksums), named after the newest raw batch they include
    and numbered from ``first_index`` (so an added file never replaces one the hour holds)."""
    if not staged.exists():
        return []
    for extra in [path for path in staged.iterdir() if path.suffix != ".parquet"]:
        extra.unlink()
    files = sorted(staged.glob("*.parquet"))
    return [file.rename(staged / f"part-b{newest:012d}-{first_index + n:05d}.parquet") for n, file in enumerate(files)]
