"""The Glue ETL step in PySpark: one stream's raw hours → typed, deduplicated, enriched processed hours.

An hour is processed **incrementally**: its processed files are named after the newest stream batch they
include (``part-b<batch>-NNNNN.parquet``), so a run reads only the raw files of later batches, drops the events
the hour already holds, and adds one file with an atomic rename. Duplicates of an event share its Kafka key and
so its partition, so the copy already processed is the one a full rebuild would keep too. An hour is rebuilt
from all its raw files when asked to, when its files carry no batch (an older layout), or when compaction merged
processed and unprocessed batches into one raw file, and always for the emergency stream, whose incident
durations depend on events that may arrive later; the rebuilt hour is staged and swapped in whole
(:meth:`LakeStorage.replace_hour`). Either way a reader sees an hour's old files or its new ones, never a
mix, and the input is the exact list of raw files taken before reading, so the counts reported for
reconciliation describe what was read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import reduce
from typing import NamedTuple

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from smartcity.lake_layout import PROCESSED, RAW, Hour, batch_of, is_compacted, processed_file_name, table_prefix
from smartcity.zones import ZONES, squared_distance
from smartcity_dagster.resources.lake import LakeFile, LakeStorage
from smartcity_dagster.spark_settings import SESSION_SETTINGS
from smartcity_dagster.tables import PROCESSED_TABLES, SPEED_COLUMN

GRID_DEGREES = 0.01
# Upper bounds (km/h, exclusive) of the speed bands; faster is "very_fast".
SPEED_BANDS = ((5.0, "stopped"), (30.0, "slow"), (60.0, "moderate"), (100.0, "fast"))
# How far back the emergency table looks for the "reported" event of an incident resolved in the window.
INCIDENT_LOOKBACK = timedelta(hours=24)
ALWAYS_REBUILT = {"emergency"}  # streams whose processed rows depend on other events of the hour


def deduplicate(frame: DataFrame) -> DataFrame:
    """Keep the first Kafka record of each event_id (deterministic: by Kafka time, partition, offset)."""
    first = Window.partitionBy("event_id").orderBy("kafka_timestamp", "kafka_partition", "kafka_offset")
    return frame.withColumn("_n", F.row_number().over(first)).where("_n = 1").drop("_n")


def nearest_zone() -> SparkColumn:
    """The name of the zone closest to (latitude, longitude), by equirectangular distance."""
    candidates = [
        F.struct(
            squared_distance(F.col("latitude"), F.col("longitude"), zone).alias("d"), F.lit(zone.name).alias("name")
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


def read_raw(spark: SparkSession, lake: LakeStorage, topic: str, files: list[LakeFile]) -> DataFrame:
    """Exactly these raw files, with their event_date/event_hour partition columns as strings."""
    for key, value in SESSION_SETTINGS.items():
        spark.conf.set(key, value)
    base = lake.spark_uri(table_prefix(RAW, topic))
    return spark.read.option("basePath", base).parquet(*[lake.spark_uri(file.key) for file in files])


class HourPlan(NamedTuple):
    """What one run does to one processed hour."""

    inputs: list[LakeFile]  # raw files to read
    lookback: list[LakeFile]  # raw files of the hour processed before (the incident lookback reads them)
    append: bool  # add files to the processed hour, instead of replacing the hour
    newest: int  # the newest raw batch the hour includes afterwards
    first_index: int  # number of the first file added (after the hour's existing files)


def plan_hour(raw: list[LakeFile], processed: list[LakeFile], rebuild: bool) -> HourPlan:
    """Append the raw files of batches the processed hour does not include yet, or rebuild the hour.

    The newest included batch is read again (its events already processed are dropped): the previous run may
    have listed the hour while that batch was being published. The stream writes one file per batch and hour,
    so a compacted file up to that batch holds nothing new, and one beyond it forces a rebuild.
    """
    newest = max(file.batch for file in raw)
    if rebuild or not processed or any(batch_of(file.name) is None for file in processed):
        return HourPlan(raw, [], False, newest, 0)
    included = max(file.batch for file in processed)
    new = [file for file in raw if file.batch > included or (file.batch == included and file.name.startswith("part-"))]
    if any(is_compacted(file.name) for file in new):
        return HourPlan(raw, [], False, newest, 0)
    return HourPlan(new, raw, True, max(newest, included), len(processed))


def _history(
    spark: SparkSession, lake: LakeStorage, topic: str, stream: str, hours: list[Hour], processed_before: list[LakeFile]
) -> DataFrame | None:
    """Earlier raw events an incident's "reported" event may be among: the lookback hours and, for hours
    processed incrementally, all their raw files (the events read now skip those processed before)."""
    if stream != "emergency":
        return None
    steps = int(INCIDENT_LOOKBACK / timedelta(hours=1))
    earlier = [Hour(hours[0].start - timedelta(hours=i)) for i in range(steps, 0, -1)]
    files = [file for listed in lake.files_of(RAW, topic, earlier).values() for file in listed] + processed_before
    return deduplicate(read_raw(spark, lake, topic, files)) if files else None


def _not_yet_processed(
    spark: SparkSession, lake: LakeStorage, frame: DataFrame, processed: list[LakeFile]
) -> DataFrame:
    """``frame`` without the events the ``processed`` files already hold."""
    if not processed:
        return frame
    held = (
        spark.read.parquet(*[lake.spark_uri(file.key) for file in processed])
        .select("event_id")
        .join(frame.select("event_id"), "event_id", "left_semi")
    )
    return frame.join(held, "event_id", "left_anti")


def process_hours(
    session: Callable[[], SparkSession],
    lake: LakeStorage,
    topic: str,
    stream: str,
    hours: list[Hour],
    inputs: dict[Hour, list[LakeFile]],
    rebuild: bool = False,
) -> dict[Hour, str]:
    """Bring the processed hours of one stream up to the raw files ``inputs``; returns what happened per hour
    ("appended", "rebuilt", "unchanged" or "removed").

    The caller lists the raw files once and checks against the same list: the stream may publish more while
    this runs (the lake sensor then requests the hour again). Hours without raw data lose their processed
    files, so running the step twice, or after a raw hour was compacted, always yields the same rows.
    ``session`` is only called (starting Spark) when there is something to read.
    """
    # An incident's duration depends on its "reported" event, which may arrive in a later batch than the events
    # already processed: emergency hours (a few events a second) are always rebuilt, so no duration goes stale.
    rebuild = rebuild or stream in ALWAYS_REBUILT
    held = lake.files_of(PROCESSED, stream, hours)
    plans = {hour: plan_hour(files, held.get(hour, []), rebuild) for hour, files in inputs.items()}
    with lake.staging(f"processed-{stream}") as stage:
        if reading := [file for plan in plans.values() for file in plan.inputs]:
            spark = session()
            frame = read_raw(spark, lake, topic, reading)
            # an event id always falls in one hour: only the appended hours' files can hold it already
            appended = [file for hour, plan in plans.items() if plan.append for file in held[hour]]
            frame = _not_yet_processed(spark, lake, frame, appended)
            lookback = [file for plan in plans.values() for file in plan.lookback]
            history = _history(spark, lake, topic, stream, hours, lookback)
            processed = transform(stream, frame, history).repartition("event_date", "event_hour")
            processed.sortWithinPartitions("event_time", "event_id").write.partitionBy(
                "event_date", "event_hour"
            ).parquet(lake.spark_uri(stage))
        return {hour: _publish(lake, stage, stream, hour, plans.get(hour), bool(held.get(hour))) for hour in hours}


def _publish(lake: LakeStorage, stage: str, stream: str, hour: Hour, plan: HourPlan | None, existed: bool) -> str:
    """Move one staged hour into the processed zone as ``plan`` says; return what happened.

    Staged files are named after the newest raw batch they include and numbered after the hour's existing files,
    so an added file never replaces one the hour holds. Spark writes one file per hour and run (the frame is
    repartitioned by hour), so appending is a single atomic move.
    """
    if plan is None:  # no raw data (any more): no processed data either
        lake.replace_hour(PROCESSED, stream, hour, [])
        return "removed" if existed else "unchanged"
    staged = lake.staged_files(f"{stage}/{hour.relative_dir}")
    named = [(key, processed_file_name(plan.newest, plan.first_index + n)) for n, key in enumerate(staged)]
    if not plan.append:
        lake.replace_hour(PROCESSED, stream, hour, named)
        return "rebuilt"
    lake.add_to_hour(PROCESSED, stream, hour, named)
    return "appended" if named else "unchanged"
