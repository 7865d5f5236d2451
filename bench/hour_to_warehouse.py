"""Benchmark: one hour of 1,000,000 events from the raw zone to the warehouse, step by step.

A simulated city busy enough to emit the events within one event hour is written straight into a private
raw zone (``simulator.lake_fixture``, 1% duplicates); then each step of the asset graph is materialized for that
hour as its own in-process run: catalog, processed (PySpark, ``local[2]``), gold (dbt), warehouse. The Spark
JVM is started before the clock of the processed step and reported apart.

    .venv/bin/python -m bench.hour_to_warehouse [--events 1000000] [--record]
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
from smartcity_dagster.definitions import build_definitions

STEPS = ("catalog", "processed", "gold", "warehouse")
# Each vehicle and its GPS unit report every second: 140 vehicles emit about 1M events an hour.
SCENARIO = Scenario(vehicles=140)


def run_step(defs: dg.Definitions, instance: dg.DagsterInstance, step: str, hour: Hour) -> float:
    selection = [k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == step]
    started = time.perf_counter()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key=hour.key, instance=instance, asset_selection=selection
    )
    assert result.success, f"step {step} failed"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the hour (default 1,000,000)")
    parser.add_argument("--record", action="store_true", help="write the figures into docs/benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hour-") as scratch:
        settings = load_settings(var_dir=Path(scratch) / "var", spark_master="local[2]")
        hour = Hour((datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0))
        started = time.perf_counter()
        counts = write_raw_fixture(
            Path(settings.lake), settings.topics, seed=1, start=hour.start, max_events=args.events,
            scenario=SCENARIO, faults=FaultRates.build(0.0, duplicate=0.01),
        )  # fmt: skip
        in_hour = sum(n for (_, day, h), n in counts.items() if (day, h) == (hour.date, hour.hour))
        elapsed = time.perf_counter() - started
        print(f"fixture: {sum(counts.values()):,} raw rows ({in_hour:,} in {hour.key}) in {elapsed:.1f}s")
        defs = build_definitions(settings)
        started = time.perf_counter()
        spark = dg.build_resources({"pyspark": defs.resources["pyspark"]})
        with spark as built:
            built.pyspark.spark_session.range(1).count()  # the JVM starts here, outside the steps' clocks
            jvm = time.perf_counter() - started
            print(f"JVM and Spark session start: {jvm:.1f}s")
            timings = {}
            with dg.instance_for_test() as instance:
                for step in STEPS:
                    timings[step] = run_step(defs, instance, step, hour)
                    print(f"{step:10s} {timings[step]:6.1f}s")
        total = sum(timings.values())
        print(f"total (excluding JVM start): {total:.1f}s  (goal: at most 30 s)")
    if args.record:
        rows = [f"| raw rows in the hour | {in_hour:,} |", f"| JVM and Spark session start | {jvm:.1f} s |"]
        rows += [f"| step: {step} | {timings[step]:.1f} s |" for step in STEPS]
        rows += [f"| total, excluding JVM start (goal ≤ 30 s) | {total:.1f} s |"]
        record_section(
            "Asset graph: one hour of events, raw to warehouse", "python -m bench.hour_to_warehouse --record", rows
        )


if __name__ == "__main__":
    main()
