"""Benchmark: the ingestion stream's throughput and latency, against the original project's plain file sink.

1. Throughput: N simulator events in fresh topics, drained by ``available-now`` on ``local[2]`` in batches of
   ``--batch-records``; sustained events/s over the full batches after the first (the first one warms the JVM
   up), wall clock from commit to commit in Spark's commit log, and over the whole run including the JVM start.
2. Baseline: the same events (same simulator seed) through Spark's plain Parquet file sink with the original
   project's settings (``from_json``, a 2-minute watermark, no partitioning), available-now; events/s and the
   ratio.
3. Latency: the simulator at a steady rate while the continuous stream runs; per record, the time from its
   Kafka timestamp to the moment its batch was published (the batch manifest's ``published_at``), p50 and p95,
   over ``--seconds`` after a ``--warmup`` at the same rate (the first batches of a fresh JVM are slow); the
   figures over the whole run, warm-up included, are reported beside them.

    .venv/bin/python -m bench.stream_throughput --events 1500000 --rate 10000 --seconds 60 [--record]
    .venv/bin/python -m bench.stream_throughput --events 1500000 --profile stream.jfr   # where the CPU goes
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from bench.report import record_section
from smartcity.kafka.admin import ensure_topics
from smartcity.kafka.broker import broker_service
from smartcity.settings import PROJECT_ROOT, load_settings
from spark_streaming.paths import QUERY_NAME

SMARTCITY = [sys.executable, "-m", "smartcity_ops"]
LATENCY_TRIGGER_S = 1
"""The latency run's trigger interval: a latency goal of seconds needs a batch every second or so."""
BATCH_LINE = re.compile(r"^batch (\d+): ([\d,]+) records: .* in ([\d.]+)s$", re.MULTILINE)
"""The line `stream start --available-now` prints per committed batch."""


def environment(root: Path, **extra: str) -> dict[str, str]:
    base = load_settings()
    prefix = f"bs{uuid.uuid4().hex[:6]}_"
    env = {
        **os.environ,
        "SMARTCITY_LAKE_URI": str(root / "lake"),
        "SMARTCITY_CHECKPOINT_URI": str(root / "checkpoints"),
        "SMARTCITY_SPARK_MASTER": "local[2]",
        **{f"SMARTCITY_{s.upper()}_TOPIC": f"{prefix}{t}" for s, t in base.topics.items()},
        **extra,
    }
    scoped = base.model_copy(update={f"{s}_topic": f"{prefix}{t}" for s, t in base.topics.items()})
    ensure_topics(scoped)
    return env


def run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return result.stdout + result.stderr


SEED = "2026"
"""The simulator's seed: the stream and the baseline read the same events."""


@dataclass(frozen=True)
class Drain:
    records: int
    batches: int
    sustained: float
    """Events/s over the full batches after the first (JVM warm), wall clock from the commit before them to the
    commit of the last: Kafka to committed raw files, Spark's own offset and commit logs included."""
    in_batches: float
    """The same batches' events/s counting only the time inside the stream's batch function."""
    with_jvm: float
    """Events/s of the whole drain, JVM start included."""


def throughput(root: Path, events: int, batch_records: int, profile: Path | None = None) -> Drain:
    """Drain ``events`` simulated events with available-now in batches of ``batch_records``.

    With ``profile``, the stream's JVM records a Java Flight Recorder CPU profile into that file.
    """
    env = environment(root / "throughput", SMARTCITY_STREAM_MAX_OFFSETS_PER_TRIGGER=str(batch_records))
    if profile is not None:
        recording = (
            f"-XX:FlightRecorderOptions=stackdepth=256 -XX:StartFlightRecording=filename={profile},settings=profile"
        )
        env["JAVA_TOOL_OPTIONS"] = f"{env.get('JAVA_TOOL_OPTIONS', '')} {recording}".strip()
    run([*SMARTCITY, "simulate", "--speedup", "0", "--seed", SEED, "--max-events", str(events), "--no-progress"], env)
    started = time.monotonic()
    output = run([*SMARTCITY, "stream", "start", "--available-now"], env)
    wall = time.monotonic() - started
    batches = {int(b): (int(records.replace(",", "")), float(s)) for b, records, s in BATCH_LINE.findall(output)}
    full = [b for b in sorted(batches) if b > 0 and batches[b][0] >= batch_records // 2]  # JVM warm, full
    total = sum(count for count, _ in batches.values())
    if not full:
        return Drain(total, len(batches), float("nan"), float("nan"), total / wall)
    commits = Path(env["SMARTCITY_CHECKPOINT_URI"]) / QUERY_NAME / "commits"
    records = sum(batches[b][0] for b in full)
    between = (commits / str(full[-1])).stat().st_mtime - (commits / str(full[0] - 1)).stat().st_mtime
    return Drain(total, len(batches), records / between, records / sum(batches[b][1] for b in full), total / wall)


BASELINE = """
import sys
from pyspark.sql import functions as F
from smartcity.contracts import CONTRACTS
from smartcity.settings import load_settings
from spark_streaming.job import spark_session
from spark_streaming.validation import SPARK_TYPES
settings = load_settings()
spark = spark_session(settings, "baseline-file-sink")
queries = []
for stream, topic in settings.topics.items():
    schema = ", ".join(f"{f.name} {SPARK_TYPES[f.type]}" for f in CONTRACTS[stream].fields)
    frame = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", settings.bootstrap_servers)
             .option("subscribe", topic).option("startingOffsets", "earliest").load()
             .select(F.from_json(F.col("value").cast("string"), schema).alias("data")).select("data.*")
             .withWatermark("event_time", "2 minutes"))
    queries.append(frame.writeStream.format("parquet").option("path", f"{sys.argv[1]}/{topic}")
                   .option("checkpointLocation", f"{sys.argv[2]}/{topic}").outputMode("append")
                   .trigger(availableNow=True).start())
for query in queries:
    query.awaitTermination()
"""


def baseline(root: Path, events: int) -> float:
    env = environment(root / "baseline")
    run([*SMARTCITY, "simulate", "--speedup", "0", "--seed", SEED, "--max-events", str(events), "--no-progress"], env)
    script = root / "baseline.py"
    script.write_text(BASELINE)
    started = time.monotonic()
    run([sys.executable, str(script), str(root / "baseline" / "lake"), str(root / "baseline" / "checkpoints")], env)
    elapsed = time.monotonic() - started
    files = str(root / "baseline" / "lake" / "*" / "*.parquet")
    rows = duckdb.sql(f"select count(*) from read_parquet('{files}', union_by_name = true)").fetchone()[0]
    return rows / elapsed


def latency(root: Path, rate: int, seconds: int, warmup: int) -> dict[str, tuple[float, float, int]]:
    """p50, p95 and records of the latency: for the whole run, and after the first ``warmup`` seconds."""
    env = environment(
        root / "latency", SMARTCITY_STREAM_TRIGGER_SECONDS=str(LATENCY_TRIGGER_S), SMARTCITY_VAR_DIR=str(root / "var")
    )
    (root / "var").mkdir(exist_ok=True)
    (root / "var" / "jars").symlink_to(load_settings().paths.jars, target_is_directory=True)
    run([*SMARTCITY, "stream", "start"], env)
    try:
        steady_from = time.time() + warmup
        run([*SMARTCITY, "simulate", "--speedup", "0", "--rate", str(rate), "--duration", str(warmup + seconds),
             "--no-progress"], env)  # fmt: skip
        time.sleep(30)
    finally:
        run([*SMARTCITY, "stream", "stop"], env)
    lake = root / "latency" / "lake"
    db = duckdb.connect()
    db.execute(
        "create table delays as select epoch(r.kafka_timestamp) as produced,"
        " epoch(m.published_at::timestamptz) - produced as d"
        f" from read_parquet('{lake}/raw/*/*/*/*.parquet', filename = true, union_by_name = true) r"
        f" join read_json('{lake}/_stream/batches/*.json') m"
        "   on m.batch_id = cast(regexp_extract(r.filename, 'part-b(\\d{12})', 1) as bigint)"
    )
    summary = "select quantile_cont(d, 0.5), quantile_cont(d, 0.95), count(*) from delays"
    return {
        "whole run": db.sql(summary).fetchone(),
        "steady": db.sql(f"{summary} where produced >= {steady_from}").fetchone(),
    }


def profile(recording: Path, events: int, batch_records: int) -> None:
    """Drain with the profiler on; its figures are slower than unprofiled ones, so they are never recorded."""
    with tempfile.TemporaryDirectory(prefix="stream-profile-") as directory:
        drained = throughput(Path(directory), events, batch_records, recording)
    print(f"{drained.records:,} records in {drained.batches} batches, {drained.sustained:,.0f} events/s (profiled)")
    print(f"profile: {recording}; read it with `jfr view hot-methods {recording}` (JDK 21 or later), "
          f"`jfr print --events jdk.ExecutionSample {recording}`, or JDK Mission Control")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_500_000)
    parser.add_argument("--batch-records", type=int, default=300_000, help="maxOffsetsPerTrigger of the drain")
    parser.add_argument("--rate", type=int, default=10_000, help="events/s for the latency run")
    parser.add_argument("--seconds", type=int, default=60, help="length of the latency measurement")
    parser.add_argument("--warmup", type=int, default=30, help="seconds at the rate before it (JVM warm-up)")
    parser.add_argument("--record", action="store_true", help="write the figures to docs/benchmarks.md")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE.jfr",
        help="only the throughput drain, with a Java Flight Recorder CPU profile of the stream written to FILE.jfr",
    )
    args = parser.parse_args()
    broker_service(load_settings()).start()
    if args.profile is not None:
        profile(args.profile.resolve(), args.events, args.batch_records)
        return
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as directory:
        root = Path(directory)
        drained = throughput(root, args.events, args.batch_records)
        plain = baseline(root, args.events)
        latencies = latency(root, args.rate, args.seconds, args.warmup)
    (p50, p95, measured), (p50_all, p95_all, _) = latencies["steady"], latencies["whole run"]
    sustained = drained.sustained
    lines = [
        f"| records drained (available-now, local[2], simulator seed {SEED}) "
        f"| {drained.records:,} in {drained.batches} batches of ≤ {args.batch_records:,} |",
        f"| sustained throughput, Kafka to committed files (full batches after the first, wall clock between "
        f"commits) | {sustained:,.0f} events/s |",
        f"| the same batches, time inside the batch function only | {drained.in_batches:,.0f} events/s |",
        f"| throughput including JVM start | {drained.with_jvm:,.0f} events/s |",
        f"| baseline: plain file sink, original settings, same events, including JVM start | {plain:,.0f} events/s |",
        f"| this stream / baseline, both including JVM start | {drained.with_jvm / plain:.2f} |",
        f"| latency Kafka → published file at {args.rate:,} events/s, trigger {LATENCY_TRIGGER_S} s, after a "
        f"{args.warmup} s warm-up, p50 / p95 | {p50:.1f} s / {p95:.1f} s "
        f"({measured:,} records over {args.seconds} s) |",
        f"| the same from the stream's start (warm-up included), p50 / p95 | {p50_all:.1f} s / {p95_all:.1f} s |",
        "| goals | ≥ 50,000 events/s; p95 latency ≤ 10 s |",
        f"| outcome | throughput goal {'met' if sustained >= 50_000 else 'NOT met'}; "
        f"latency goal {'met' if p95 <= 10 else 'NOT met'} |",
    ]
    print("\n".join(lines))
    if args.record:
        command = (
            f"python -m bench.stream_throughput --events {args.events} --batch-records {args.batch_records} "
            f"--rate {args.rate} --seconds {args.seconds} --warmup {args.warmup}"
        )
        record_section("Streaming ingestion", command, lines)


if __name__ == "__main__":
    main()
