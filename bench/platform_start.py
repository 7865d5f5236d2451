"""Benchmark: the main job, from the first command to the first dashboard page showing data, then how fresh
the dashboard stays while the city sends about 5,000 events/s.

- warm: this checkout (virtual environment and jars already in place) runs `smartcity run` on an empty var/ of
  its own.
- cold: a fresh clone in a temporary directory, with empty uv and Ivy caches, runs the README's `make run`
  (set-up included).

The clock starts when the command is launched and stops when headless Chromium shows the overview with a
non-zero "Events, latest hour" tile. Then, for ``--minutes``, the overview stays open in Chromium, reloading
itself as a viewer's page does, and every 5 s the age of the time its "Data as of" line shows is sampled: its
p50 and p95 are the event-to-dashboard freshness. The age of the newest event in the warehouse itself is
sampled beside it (the dashboard adds its refresh interval and query cache to that). The simulator's fleet is
sized for the rate (``SMARTCITY_SIMULATOR_VEHICLES``), and the rate achieved is measured from Kafka's end offsets.

    .venv/bin/python -m bench.platform_start [--cold] [--vehicles 2500] [--minutes 10] [--record]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from bench.report import record_section
from dashboard.data import kpis
from dashboard.warehouse import NoData, WarehouseUnavailable
from smartcity.kafka.admin import topic_offsets
from smartcity.settings import PROJECT_ROOT, load_settings
from smartcity_dagster.sensors import SENSOR_NAME as LAKE_SENSOR

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SAMPLE_EVERY_S = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(var_dir: Path, vehicles: int) -> dict[str, str]:
    names = ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "DAGSTER_PORT", "DASHBOARD_PORT", "SPARK_CONNECT_PORT")
    ports = {f"SMARTCITY_{name}": str(free_port()) for name in names}
    return {**ports, "SMARTCITY_VAR_DIR": str(var_dir), "SMARTCITY_SIMULATOR_VEHICLES": str(vehicles)}


def command(cold: bool, scratch: Path, env: dict[str, str]) -> tuple[list[str], Path]:
    """The command a user runs, and where: `make run` in a fresh clone (cold) or `smartcity run` here (warm)."""
    if not cold:
        (scratch / "var").mkdir()
        (scratch / "var" / "jars").symlink_to(load_settings().paths.jars, target_is_directory=True)
        return [str(Path(sys.executable).with_name("smartcity")), "run"], PROJECT_ROOT
    clone = scratch / "clone"
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)], check=True)
    env["UV_CACHE_DIR"] = str(scratch / "uv-cache")
    env["SMARTCITY_VAR_DIR"] = str(clone / "var")
    env["HOME"] = str(scratch / "home")  # an empty Ivy cache (~/.ivy2) for the jar resolution
    return ["make", "run"], clone


def chromium(playwright: Playwright) -> Browser:
    """Debian's chromium, headless."""
    return playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)


def overview_shows_data(url: str) -> bool:
    """Headless Chromium opens the overview; True when its events tile shows a number above zero."""
    with sync_playwright() as playwright:
        browser = chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector('[data-testid="stMetric"]', timeout=60_000)
            for metric in page.locator('[data-testid="stMetric"]').all():
                if metric.locator('[data-testid="stMetricLabel"]').inner_text().strip() == "Events, latest hour":
                    return metric.locator('[data-testid="stMetricValue"]').inner_text().strip() not in ("0", "n/a")
            return False
        finally:
            browser.close()


AS_OF = re.compile(r"Data as of (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC")


def shown_age_s(page: Page) -> float | None:
    """Age of the time the open overview's "Data as of" line shows, or None while it shows none."""
    line = page.get_by_text("Data as of")
    match = AS_OF.search(line.first.inner_text()) if line.count() else None
    if match is None:
        return None
    return (datetime.now(UTC).replace(tzinfo=None) - datetime.fromisoformat(match.group(1))).total_seconds()


def sample_freshness(url: str, warehouse: str, minutes: float) -> tuple[list[float], list[float]]:
    """(ages the open dashboard shows, ages of the warehouse's newest event), every ``SAMPLE_EVERY_S``."""
    shown, stored = [], []
    with sync_playwright() as playwright:
        browser = chromium(playwright)
        page = browser.new_page()
        page.goto(url)
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline:
            time.sleep(SAMPLE_EVERY_S)
            if (age := shown_age_s(page)) is not None:
                shown.append(age)
            if (age := data_age_s(warehouse)) is not None:
                stored.append(age)
        browser.close()
    return shown, stored


def data_age_s(warehouse: str) -> float | None:
    try:
        as_of = kpis(warehouse).data_as_of
    except (NoData, WarehouseUnavailable):
        return None
    return None if as_of is None else (datetime.now(UTC).replace(tzinfo=None) - as_of).total_seconds()


def kafka_total(settings: object) -> int:
    return sum(row.high for row in topic_offsets(settings, timeout=10))


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def cycle_breakdown(dagster_home: Path, since: float) -> list[tuple[str, float]]:
    """Median seconds of each part of the lake sensor's successful runs created after ``since`` (epoch): the
    wait from the run's creation to its start (queue, launch, code load), each step, and the whole run."""
    parts: dict[str, list[float]] = {}
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.get_run_records(
            filters=RunsFilter(statuses=[DagsterRunStatus.SUCCESS], created_after=datetime.fromtimestamp(since, UTC),
                               tags={"dagster/sensor_name": LAKE_SENSOR}))  # fmt: skip
        for record in records:
            created = record.create_timestamp.timestamp()
            parts.setdefault("launch (created → started)", []).append(record.start_time - created)
            for step in instance.get_run_step_stats(record.dagster_run.run_id):
                if step.end_time is not None:
                    parts.setdefault(f"step {step.step_key}", []).append(step.end_time - step.start_time)
            parts.setdefault("whole run (created → ended)", []).append(record.end_time - created)
    return [(part, statistics.median(seconds)) for part, seconds in parts.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="fresh clone, empty caches, `make run`")
    parser.add_argument("--vehicles", type=int, default=2500, help="simulator fleet (≈2 events/s each)")
    parser.add_argument("--minutes", type=float, default=10.0, help="freshness sampling after the first data")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up waiting for data after this")
    parser.add_argument("--record", action="store_true", help="write the figures into docs/benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-start-") as scratch_dir:
        scratch = Path(scratch_dir)
        env = environment(scratch / "var", args.vehicles)
        argv, cwd = command(args.cold, scratch, env)
        settings = load_settings(**{k.removeprefix("SMARTCITY_").lower(): v for k, v in env.items()
                                    if k.startswith("SMARTCITY_")})  # fmt: skip
        url = f"http://127.0.0.1:{settings.dashboard_port}"
        log = scratch / "main-job.log"
        print(f"{'cold' if args.cold else 'warm'} start: {' '.join(argv)} (output: {log})", flush=True)
        started = time.monotonic()
        with log.open("w") as out:
            job = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        try:
            while True:
                if job.poll() is not None:
                    raise SystemExit(f"the main job exited ({job.returncode}):\n{log.read_text()[-3000:]}")
                if time.monotonic() - started > args.timeout:
                    raise SystemExit(f"no data on the dashboard after {args.timeout:.0f}s")
                if data_age_s(settings.warehouse) is not None and overview_shows_data(url):
                    break
                time.sleep(2)
            to_data = time.monotonic() - started
            print(f"first dashboard page with data: {to_data:.0f}s", flush=True)
            first_total, window_start, window_epoch = kafka_total(settings), time.monotonic(), time.time()
            ages, stored = sample_freshness(url, settings.warehouse, args.minutes)
            rate = (kafka_total(settings) - first_total) / (time.monotonic() - window_start)
        finally:
            os.killpg(job.pid, signal.SIGINT)  # Ctrl-C, as a user stops it
            job.wait(timeout=300)
        breakdown = cycle_breakdown(settings.paths.dagster_home, window_epoch)
    p50, p95 = percentile(ages, 50), percentile(ages, 95)
    stored_p50, stored_p95 = percentile(stored, 50), percentile(stored, 95)
    print(f"rate into Kafka: {rate:,.0f} events/s over {args.minutes:g} min; {len(ages)} freshness samples")
    print(f"freshness (age of the data the open dashboard shows): p50 {p50:.0f}s, p95 {p95:.0f}s (goal p95 ≤ 60 s)")
    print(f"age of the warehouse's newest event: p50 {stored_p50:.0f}s, p95 {stored_p95:.0f}s")
    print("lake sensor runs during the sampling, median seconds:")
    for part, seconds in breakdown:
        print(f"  {part}: {seconds:.1f}")
    if args.record:
        mode = "cold (fresh clone, empty caches, `make run`)" if args.cold else "warm (`smartcity run`)"
        rows = [f"| first dashboard page with data, {mode} (goal warm ≤ 3 min) | {to_data:.0f} s |",
                f"| simulator fleet / rate into Kafka | {args.vehicles:,} vehicles / {rate:,.0f} events/s |",
                f"| freshness p50 (age of the data the open dashboard shows) | {p50:.0f} s |",
                f"| freshness p95 (goal ≤ 60 s) | {p95:.0f} s |", f"| freshness max | {max(ages):.0f} s |",
                f"| age of the warehouse's newest event, p50 / p95 | {stored_p50:.0f} s / {stored_p95:.0f} s |",
                *(f"| lake sensor run, median: {part} | {seconds:.1f} s |" for part, seconds in breakdown)]  # fmt: skip
        flags = ("--cold " if args.cold else "") + f"--vehicles {args.vehicles} --minutes {args.minutes:g}"
        record_section(f"Main job: start to dashboard, and freshness ({'cold' if args.cold else 'warm'})",
                       f"python -m bench.platform_start {flags} --record", rows)  # fmt: skip


if __name__ == "__main__":
    main()
