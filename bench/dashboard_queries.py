"""Benchmark: the dashboard's queries per page over a warehouse built from 10,000,000 events.

The warehouse is built the way the platform builds it: a simulated city busy enough for about a million events
an hour is written into a private raw zone, hour by hour, and the asset graph loads all the hours in one run.
Then every page's queries (uncached, as on a cache miss) run repeatedly; the page time is the sum of its queries.

    .venv/bin/python -m bench.dashboard_queries [--events 10000000] [--repeat 30] [--record]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from bench.hour_to_warehouse import SCENARIO
from bench.report import record_section
from dashboard import data
from dashboard.warehouse import query
from simulator.lake_fixture import write_raw_fixture
from smartcity.lake_layout import Hour
from smartcity.settings import load_settings
from smartcity_dagster.definitions import build_definitions
from tests.graph import run_graph

EVENTS_PER_HOUR = 1_000_000


def pages(url: str, first: datetime, last: datetime) -> dict[str, Callable[[], object]]:
    """Each page's queries, with the arguments the page passes on first load."""
    day_ago = last - timedelta(hours=23)
    vehicle = data.vehicles(url)[0]
    return {
        "overview": lambda: (data.kpis(url), data.hour_range(url), data.traffic_trend(url, day_ago, last, [])),
        "map": lambda: (data.vehicle_positions(url), data.cameras(url), data.stations(url), data.open_incidents(url)),
        "trends": lambda: (data.hour_range(url), data.zones(url), data.traffic_trend(url, day_ago, last, []),
                           data.weather_trend(url, day_ago, last, []), data.incident_trend(url, day_ago, last, [])),
        "incidents": lambda: (data.hour_range(url), data.incidents(url, first, last + timedelta(hours=1))),
        "vehicles": lambda: (data.vehicles(url), data.vehicle_trip(url, vehicle)),
    }  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events in the warehouse (default 10M)")
    parser.add_argument("--repeat", type=int, default=30, help="loads of each page (default 30)")
    parser.add_argument("--record", action="store_true", help="write the figures into docs/benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as scratch:
        settings = load_settings(var_dir=Path(scratch) / "var", spark_master="local[2]")
        hours = -(-args.events // EVENTS_PER_HOUR)
        first = Hour((datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0))
        started = time.perf_counter()
        for index in range(hours):
            count = min(EVENTS_PER_HOUR, args.events - index * EVENTS_PER_HOUR)
            start = first.start + timedelta(hours=index)
            write_raw_fixture(Path(settings.lake), settings.topics, seed=index, start=start, max_events=count,
                              scenario=SCENARIO, batch=index)  # fmt: skip
            print(f"hour {index + 1}/{hours} simulated ({time.perf_counter() - started:.0f}s)", flush=True)
        last = Hour(first.start + timedelta(hours=hours))  # drained incidents may spill into one more hour
        started = time.perf_counter()
        assert run_graph(build_definitions(settings), dg.DagsterInstance.ephemeral(), first.key, last.key).success
        print(f"warehouse built in {time.perf_counter() - started:.0f}s", flush=True)
        url = settings.warehouse
        timings: dict[str, list[float]] = {}
        for name, load in pages(url, first.start.replace(tzinfo=None), last.start.replace(tzinfo=None)).items():
            load()  # warm the OS file cache once, as a running dashboard has it
            for _ in range(args.repeat):
                began = time.perf_counter()
                load()
                timings.setdefault(name, []).append((time.perf_counter() - began) * 1000)
            print(
                f"{name:10s} p50 {percentile(timings[name], 50):6.1f} ms   p95 {percentile(timings[name], 95):6.1f} ms"
            )
        events = int(query(url, "SELECT CAST(sum(events) AS BIGINT) FROM gold.events_hourly").iat[0, 0])
        print(f"events in the warehouse's hours: {events:,}")
    if args.record:
        rows = [f"| events behind the warehouse (after deduplication) | {events:,} |"]
        for name, t in timings.items():
            rows.append(
                f"| page {name}: p50 / p95 (goal p95 ≤ 200 ms) | {percentile(t, 50):.1f} / {percentile(t, 95):.1f} ms |"
            )
        record_section("Dashboard: page query times", "python -m bench.dashboard_queries --record", rows)


if __name__ == "__main__":
    main()
