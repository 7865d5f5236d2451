"""Benchmark: one hour of events from the raw zone to the warehouse, step by step, at 0.25x, 1x and 4x its size.

For each size, a simulated city busy enough to emit all its events within one event hour (the fleet grows with
the size: 140 vehicles and their GPS units report about 1M events an hour) is written straight into a private raw
zone (``simulator.lake_fixture``, 1% duplicates); then each step of the asset graph is materialized for that
hour as its own in-process run: catalog, processed (PySpark, ``local[2]``), gold (dbt), warehouse. The Spark
JVM is started before any clock and reported apart, and the smallest size runs once uncounted first, so every
counted size meets a warm JIT (a cold one added about 10 s to the first processing step). The cost per million
events shows how the work grows with the size.

    .venv/bin/python -m bench.hour_to_warehouse [--events 1000000] [--scales 0.25 1 4] [--record]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from bench.report import record_section
from simulator.city import Scenario
from simulator.faults import FaultRates
from simulator.lake_fixture import write_raw_fixture
from smartcity.lake_layout import Hour
from smartcity.settings import load_settings
from smartcity_dagster.assets.groups import STEPS
from smartcity_dagster.definitions import build_definitions

VEHICLES_PER_MILLION = 140  # each vehicle and its GPS unit report every second: 140 vehicles ≈ 1M events an hour


def run_step(defs: dg.Definitions, instance: dg.DagsterInstance, step: str, hour: Hour) -> float:
    selection = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == step]
    started = time.perf_counter()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key=hour.key, instance=instance, asset_selection=selection
    )
    assert result.success, f"step {step} failed"
    return time.perf_counter() - started


def one_size(scratch: Path, events: int, hour: Hour) -> tuple[int, dict[str, float]]:
    """Rows landed in the hour, and seconds per step, for one hour of ``events`` events."""
    settings = load_settings(var_dir=scratch / f"var-{events}", spark_master="local[2]")
    scenario = Scenario(vehicles=max(1, round(VEHICLES_PER_MILLION * events / 1_000_000)))
    started = time.perf_counter()
    counts = write_raw_fixture(
        Path(settings.lake), settings.topics, seed=1, start=hour.start, max_events=events,
        scenario=scenario, faults=FaultRates.build(0.0, duplicate=0.01),
    )  # fmt: skip
    in_hour = sum(n for (_, day, h), n in counts.items() if (day, h) == (hour.date, hour.hour))
    print(f"{events:,} events: {in_hour:,} raw rows in {hour.key} (fixture {time.perf_counter() - started:.0f}s)")
    if in_hour < 0.95 * sum(counts.values()):
        raise SystemExit(f"only {in_hour:,} of {sum(counts.values()):,} rows fell in the hour: the city is too slow")
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        timings = {step: run_step(defs, instance, step, hour) for step in STEPS}
    for step, seconds in timings.items():
        print(f"  {step:10s} {seconds:6.1f}s")
    return in_hour, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the hour at 1x (default 1,000,000)")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.25, 1, 4], help="sizes, x --events")
    parser.add_argument("--record", action="store_true", help="write the figures into docs/benchmarks.md")
    args = parser.parse_args()
    hour = Hour((datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0))
    with tempfile.TemporaryDirectory(prefix="bench-hour-") as scratch:
        spark = build_definitions(load_settings(var_dir=Path(scratch) / "var-jvm", spark_master="local[2]"))
        started = time.perf_counter()
        with dg.build_resources({"pyspark": spark.resources["pyspark"]}) as built:
            built.pyspark.spark_session.range(1).count()  # the JVM starts here, outside the steps' clocks
            jvm = time.perf_counter() - started
            print(f"JVM and Spark session start: {jvm:.1f}s; warm-up (not counted):")
            one_size(Path(scratch) / "warm-up", round(args.events * min(args.scales)), hour)
            sizes = {scale: one_size(Path(scratch), round(args.events * scale), hour) for scale in sorted(args.scales)}
    rows = [f"| JVM and Spark session start (once, before a warm-up run of the smallest size) | {jvm:.1f} s |"]
    for scale, (in_hour, timings) in sizes.items():
        total = sum(timings.values())
        steps = ", ".join(f"{step} {seconds:.1f}" for step, seconds in timings.items())
        per_million = total / (in_hour / 1_000_000)
        print(f"{scale:g}x: {in_hour:,} rows, total {total:.1f}s ({per_million:.1f}s per million events)")
        rows.append(f"| {scale:g}x: {in_hour:,} raw rows in the hour | {total:.1f} s ({steps}); "
                    f"{per_million:.1f} s per million events |")  # fmt: skip
    if args.record:
        scales = " ".join(f"{scale:g}" for scale in sorted(args.scales))
        record_section(
            "Asset graph: one hour of events, raw to warehouse",
            f"python -m bench.hour_to_warehouse --events {args.events} --scales {scales} --record",
            rows,
        )


if __name__ == "__main__":
    main()
