"""The Structured Streaming job: Kafka → contract validation → raw zone and quarantine, exactly once for readers.

Each micro-batch runs :class:`BatchWriter` (``foreachBatch``): records are validated against their topic's
contract, written by Spark to a staging prefix, then published under batch-derived names (see
:mod:`spark_streaming.lake` and docs/streaming.md). Spark's checkpoint (offset and commit logs) decides
which Kafka offsets each batch holds, so a batch replayed after a crash rewrites the same files.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark.errors import StreamingQueryException
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from smartcity.atomic import write_json_atomically
from smartcity.contracts import CONTRACTS, Contract
from smartcity.errors import PlatformError
from smartcity.jars import classpath, spark_bundles
from smartcity.kafka.admin import kafka_problem
from smartcity.object_store import local_root
from smartcity.ports import LOOPBACK
from smartcity.processes import children_output_to
from smartcity.settings import Settings
from smartcity.spark_s3 import spark_s3_conf, trust_options
from spark_streaming.lake import Lake, batch_timestamp, quarantine_reasons, row_counts
from spark_streaming.paths import QUERY_NAME, StreamPaths
from spark_streaming.validation import (
    PlausibleTimes,
    clean_rows,
    diagnose,
    fast_pass,
    quarantined_rows,
    valid_rows,
)

log = logging.getLogger(__name__)
FINGERPRINT_FILE = "smartcity-query.json"
MAX_BACKOFF_S = 60.0


def spark_session(settings: Settings, app_name: str, jvm_output: Path | None = None) -> SparkSession:
    """A session with the pre-resolved Kafka connector (and S3A) jars; under spark-submit its master wins.

    ``jvm_output``: a file for the JVM's own output (its start-up warnings), instead of this process's terminal.
    """
    jars = [str(jar) for bundle in spark_bundles(settings) for jar in classpath(settings, bundle)]
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.jars", ",".join(jars))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", settings.spark_driver_memory)
        # The throughput collector: about 10 % more events/s than G1 in bench/stream_throughput.py, short pauses.
        # Huge methods compiled too: the fast pass's generated code passes HotSpot's 8 KB limit, and interpreting
        # it cost a fifth of the stream's throughput.
        .config(
            "spark.driver.extraJavaOptions",
            " ".join(["-XX:+UseParallelGC", "-XX:-DontCompileHugeMethods", *trust_options(settings)]),
        )
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.streaming.stopGracefullyOnShutdown", "true")
        .config("spark.sql.parquet.compression.codec", "zstd")
        # Staged output is published by rename anyway: skip the committer's second rename and _SUCCESS files.
        .config("spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version", "2")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .config("spark.sql.adaptive.enabled", "false")
    )
    for key, value in spark_s3_conf(settings).items():
        builder = builder.config(key, value)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not launched by spark-submit, whose master and addresses win
        # The driver's UI (port 4040 on) binds to SPARK_LOCAL_IP, else every interface: loopback unless told.
        os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
        builder = builder.master(settings.spark_master)
        builder = builder.config("spark.driver.host", LOOPBACK).config("spark.driver.bindAddress", LOOPBACK)
    with children_output_to(jvm_output):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def fingerprint(settings: Settings) -> dict[str, object]:
    """What a checkpoint is bound to: resuming it with anything else would read the wrong offsets."""
    return {
        "query": QUERY_NAME,
        "topics": sorted(settings.topics.values()),
        "bootstrap_servers": settings.bootstrap_servers,
        "lake": settings.lake if settings.lake_on_s3 else str(local_root(settings.lake)),
    }


def verify_checkpoint(checkpoint: Path, expected: dict[str, object]) -> None:
    """Refuse a checkpoint made for another query instead of silently restarting from earliest or latest."""
    marker = checkpoint / FINGERPRINT_FILE
    if marker.exists():
        found = json.loads(marker.read_text())
        if found != expected:
            changed = ", ".join(sorted(k for k in expected.keys() | found.keys() if found.get(k) != expected.get(k)))
            raise PlatformError(
                f"the checkpoint {checkpoint} belongs to a different query (changed: {changed}; checkpoint has "
                f"{json.dumps(found)}). Restore the settings, or point SMARTCITY_CHECKPOINT_URI at a new "
                "directory to start over deliberately."
            )
        return
    if (checkpoint / "offsets").exists():
        raise PlatformError(f"the checkpoint {checkpoint} has offsets but no {FINGERPRINT_FILE}; refusing to guess")
    checkpoint.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(expected, indent=2, sort_keys=True))


def verify_lake(checkpoint: Path, lake: Lake) -> None:
    """Refuse a new checkpoint over a lake that has published batches: batch ids would start at 0 again."""
    if (checkpoint / "offsets").exists():
        return
    if published := lake.storage.list_files(lake.batches, ".json"):
        raise PlatformError(
            f"the checkpoint {checkpoint} is new, but the lake {lake.storage!r} already holds {len(published)} "
            "published batch(es) of another checkpoint: starting from the earliest offsets would number batches "
            "from 0 again, overwrite their files and duplicate the rest. Restore that checkpoint, or start over "
            "deliberately with an empty lake as well (move both aside)."
        )


def wait_for_kafka(settings: Settings, stop: threading.Event, attempts: int | None) -> None:
    """Retry with exponential backoff until Kafka is ready; give up after ``attempts`` (None: never)."""
    delay, attempt = 1.0, 0
    while (problem := kafka_problem(settings, timeout=5)) is not None:
        attempt += 1
        if attempts is not None and attempt >= attempts:
            raise type(problem)(f"{problem}; gave up after {attempt} attempts. Start it with `smartcity kafka start`.")
        log.warning("%s; retrying in %.0fs (attempt %d)", problem, delay, attempt)
        if stop.wait(delay):
            raise KeyboardInterrupt
        delay = min(delay * 2, MAX_BACKOFF_S)


@dataclass(frozen=True)
class BatchReport:
    """What one committed batch did, for the person watching a foreground stream."""

    batch_id: int
    records: int
    """Kafka records the batch read."""
    raw_rows: int
    quarantined: dict[str, int]
    """Quarantined rows per ``<topic>/<reason>``."""
    seconds: float


def describe(records: int, raw_rows: int, quarantined: dict[str, int]) -> str:
    """'5,000 records: 4,990 raw, 10 quarantined (invalid_json 6, oversized 4)': reasons summed over the topics."""
    by_reason: Counter[str] = Counter()
    for key, rows in quarantined.items():
        by_reason[key.rpartition("/")[2]] += rows
    reasons = ", ".join(f"{reason} {rows:,}" for reason, rows in sorted(by_reason.items()))
    total = sum(quarantined.values())
    return f"{records:,} records: {raw_rows:,} raw, {total:,} quarantined" + (f" ({reasons})" if reasons else "")


BatchListener = Callable[[BatchReport], None]


class BatchWriter:
    """``foreachBatch`` handler: validate, stage, publish, and record a manifest of what was published."""

    def __init__(self, settings: Settings, paths: StreamPaths, on_batch: BatchListener | None = None) -> None:
        self.topics = {topic: CONTRACTS[stream] for stream, topic in settings.topics.items()}
        self.paths = paths
        self.first_partition = datetime.combine(settings.partitions_start, datetime.min.time(), UTC)
        self.tolerance = timedelta(hours=settings.future_tolerance_hours)
        self.on_batch = on_batch

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        lake = self.paths.lake
        lake.forget_intents(before=batch_id)  # batches before this one are in Spark's commit log
        stage = lake.stage(batch_id)
        lake.storage.delete_prefix(stage)
        ingest_time = batch_timestamp(self.paths.checkpoint, batch_id)  # the same when the batch is replayed
        times = PlausibleTimes(self.first_partition, ingest_time + self.tolerance)
        batch.persist()
        try:
            records = batch.count()  # materialise the cache once, before five concurrent jobs would each read Kafka
            with ThreadPoolExecutor(max_workers=len(self.topics)) as pool:
                list(pool.map(lambda item: self._stage_topic(batch, stage, times, ingest_time, *item),
                              self.topics.items()))  # fmt: skip
        finally:
            batch.unpersist()
        moves = [
            move
            for zone in (lake.raw, lake.quarantine)
            for topic in self.topics
            for move in lake.plan(f"{stage}/{zone}/{topic}", f"{zone}/{topic}", batch_id)
        ]
        lake.publish(batch_id, moves)
        manifest = self._manifest(batch_id, [target for _, target in moves])
        lake.write_manifest(batch_id, manifest)
        lake.storage.delete_prefix(stage)
        report = BatchReport(batch_id, records, sum(manifest["raw_rows"].values()), manifest["quarantine_rows"],
                             time.monotonic() - started)  # fmt: skip
        if self.on_batch is not None:  # it reports the batch itself
            self.on_batch(report)
        else:
            log.info("batch %d: %s, published in %.1fs", batch_id,
                     describe(report.records, report.raw_rows, report.quarantined), report.seconds)  # fmt: skip
        write_heartbeat(self.paths.heartbeat, {"pid": os.getpid(), "state": "running", "last_batch": batch_id})

    def _stage_topic(
        self, batch: DataFrame, stage: str, times: PlausibleTimes, ingest_time: datetime, topic: str, contract: Contract
    ) -> None:
        """Validate one topic's records and write its raw and quarantine files to the staging prefix.

        Each output is coalesced to one task: the five topics run concurrently, and an hour gets one file
        per batch instead of one per Kafka partition.
        """
        storage = self.paths.lake.storage
        raw, quarantine = (storage.spark_uri(f"{stage}/{zone}/{topic}") for zone in ("raw", "quarantine"))
        # Not cached: building a columnar cache of every checked record cost a tenth of the stream's CPU. The rare
        # batch with suspects computes the fast pass again, from the cached batch.
        checked = fast_pass(batch.where(F.col("topic") == topic), contract, times)
        # One job writes the clean records and counts the suspects; the precise pass, a large plan, runs only when
        # there are suspects, on them alone.
        suspects = Observation()
        counted = checked.observe(suspects, F.count_if("_suspect").alias("n"))
        self._write_raw(clean_rows(counted, contract), contract, ingest_time, raw)
        if suspects.get["n"] == 0:
            return
        diagnosed = diagnose(checked.where("_suspect").select(*batch.columns), contract, times).persist()
        try:
            valid_suspects = Observation()
            quarantined_rows(
                diagnosed.observe(valid_suspects, F.count_if(F.col("reason").isNull()).alias("n")), ingest_time
            ).coalesce(1).write.mode("overwrite").partitionBy("ingest_date", "ingest_hour").parquet(quarantine)
            if valid_suspects.get["n"] > 0:  # rare: rewrite, so that a batch stays one file per hour
                self._write_raw(clean_rows(checked, contract).unionByName(diagnosed), contract, ingest_time, raw)
        finally:
            diagnosed.unpersist()

    @staticmethod
    def _write_raw(validated: DataFrame, contract: Contract, ingest_time: datetime, uri: str) -> None:
        """The valid rows (``reason`` NULL) of ``validated``, one file per event hour, replacing what is there."""
        writer = valid_rows(validated, contract, ingest_time).coalesce(1).write.mode("overwrite")
        writer.partitionBy("event_date", "event_hour").parquet(uri)

    def _manifest(self, batch_id: int, published: list[str]) -> dict:
        lake = self.paths.lake
        raw = [file for file in published if file.startswith(f"{lake.raw}/")]
        quarantine = [file for file in published if file.startswith(f"{lake.quarantine}/")]
        return {
            "batch_id": batch_id,
            "published_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "raw_rows": row_counts(lake.storage, raw, lake.raw),
            "quarantine_rows": quarantine_reasons(lake.storage, quarantine, lake.quarantine),
        }


def write_heartbeat(path: Path, state: dict) -> None:
    write_json_atomically(path, {**state, "at": datetime.now(UTC).isoformat(timespec="seconds")})


def start_query(
    spark: SparkSession, settings: Settings, paths: StreamPaths, available_now: bool, on_batch: BatchListener | None
) -> StreamingQuery:
    source = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.bootstrap_servers)
        .option("subscribe", ",".join(settings.topics.values()))
        .option("startingOffsets", "earliest")
        .option("failOnDataLoss", "true")
        .option("maxOffsetsPerTrigger", settings.stream_max_offsets_per_trigger)
        .load()
    )
    writer = source.writeStream.queryName(QUERY_NAME).foreachBatch(BatchWriter(settings, paths, on_batch))
    writer = writer.option("checkpointLocation", str(paths.checkpoint))
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.stream_trigger_seconds} seconds")
    return writer.start()


def _await(query: StreamingQuery, stop: threading.Event) -> None:
    """Wait for the query to end; on a stop request, let the running batch commit, then stop it.

    The stop comes once the trigger is idle or the query has reported progress past the request (Spark reports
    a batch's progress after writing it to its commit log), so a backlog does not delay it. A batch Spark
    starts in the moment before the stop is interrupted before it publishes anything and runs again, with the
    same offsets, after a restart.
    """
    while query.isActive:
        if stop.is_set():
            before = _last_committed(query)
            while query.isActive and query.status.get("isTriggerActive") and _last_committed(query) == before:
                time.sleep(0.1)
            log.info("stopping; the last batch this run committed: %s", _last_committed(query))
            query.stop()
            break
        query.awaitTermination(0.5)
    error = query.exception()
    if error is not None:
        raise StreamingQueryException(error.desc, error.stackTrace)  # type: ignore[arg-type]


def _last_committed(query: StreamingQuery) -> int | None:
    progress = query.lastProgress
    return None if progress is None else progress["batchId"]


def _kafka_trouble(error: Exception) -> bool:
    text = str(error)
    return any(
        marker in text
        for marker in (
            "TimeoutException",
            "Timeout of",
            "UnknownTopicOrPartition",
            "Broker may not be available",
            "Failed to construct kafka consumer",
        )
    )


def run_stream(
    settings: Settings,
    available_now: bool,
    stop: threading.Event,
    on_batch: BatchListener | None = None,
    jvm_output: Path | None = None,
) -> None:
    """Run the ingestion query until stopped (continuous) or until Kafka is drained (available-now); ``on_batch`` is
    told of each committed batch, ``jvm_output`` takes the JVM's own output (see :func:`spark_session`)."""
    paths = StreamPaths.of(settings)
    verify_lake(paths.checkpoint, paths.lake)
    verify_checkpoint(paths.checkpoint, fingerprint(settings))
    if settings.lake_on_s3 and not available_now:
        log.info(
            "the lake is on S3: each batch adds a file per topic and event hour, up to %.0f per hour at a trigger of "
            "%gs (SMARTCITY_STREAM_TRIGGER_SECONDS), until the hour is compacted once closed",
            3600 / settings.stream_trigger_seconds, settings.stream_trigger_seconds,
        )  # fmt: skip
    wait_for_kafka(settings, stop, attempts=3 if available_now else None)
    spark = spark_session(settings, "smartcity-raw-ingest", jvm_output)
    if threading.current_thread() is threading.main_thread():
        # SparkContext replaced our SIGINT handler with one that cancels running jobs; Ctrl-C should stop
        # gracefully like SIGTERM does (let the running batch commit).
        signal.signal(signal.SIGINT, signal.getsignal(signal.SIGTERM))
    delay = 1.0
    try:
        while not stop.is_set():
            query = start_query(spark, settings, paths, available_now, on_batch)
            write_heartbeat(paths.heartbeat, {"pid": os.getpid(), "state": "running", "last_batch": None})
            log.info("query %s started (%s), checkpoint %s", QUERY_NAME,
                     "available-now" if available_now else f"every {settings.stream_trigger_seconds:g}s",
                     paths.checkpoint)  # fmt: skip
            try:
                _await(query, stop)
                return
            except StreamingQueryException as exc:
                if available_now or not _kafka_trouble(exc):
                    raise PlatformError(f"the streaming query failed: {str(exc).splitlines()[0]}") from exc
                log.warning("Kafka trouble (%s); restarting the query in %.0fs", str(exc).splitlines()[0], delay)
                if stop.wait(delay):
                    return
                delay = min(delay * 2, MAX_BACKOFF_S)
                wait_for_kafka(settings, stop, attempts=None)
    finally:
        write_heartbeat(paths.heartbeat, {"pid": os.getpid(), "state": "stopped", "last_batch": None})
        spark.stop()
