"""The dashboard in a real browser: served by Streamlit, read by Debian's headless Chromium through Playwright."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from playwright.sync_api import Browser, Page, sync_playwright

from dashboard.serve import streamlit_command
from smartcity.settings import PROJECT_ROOT
from tests.conftest import settings_from

ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts" / "dashboard"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def served_dashboard(environment: dict[str, str]) -> Iterator[str]:
    """The dashboard served on 127.0.0.1 for ``environment``, as `smartcity dashboard` serves it; yields its URL."""
    settings = settings_from(environment)
    with serving(streamlit_command(settings), {**os.environ, **environment}, settings.dashboard_port,
                 settings.var_dir / "dashboard.log") as url:  # fmt: skip
        yield url


@contextmanager
def serving(command: list[str], environment: dict[str, str], port: int, log_path: Path,
            cwd: Path | None = None) -> Iterator[str]:  # fmt: skip
    """Streamlit started by ``command`` (its log in ``log_path``), once its health endpoint answers on ``port``."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=environment, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


DRAWN_CHARTS = '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg'


def drawn_charts(page: Page, expected: int) -> int:
    """How many charts the page has drawn, once at least ``expected`` are (Vega draws them one by one)."""
    page.wait_for_function(f"document.querySelectorAll('{DRAWN_CHARTS}').length >= {expected}", timeout=60_000)
    return page.locator('[data-testid="stVegaLiteChart"]').count()


def tile_values(page: Page) -> dict[str, str]:
    """The overview's KPI tiles as shown: label → displayed value."""
    page.wait_for_selector('[data-testid="stMetric"], [data-testid="stException"]', timeout=60_000)
    failures = page.locator('[data-testid="stException"]')
    assert not failures.count(), failures.first.inner_text()
    tiles = {}
    for metric in page.locator('[data-testid="stMetric"]').all():
        label = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        tiles[label] = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return tiles


CUT_SHORT = """() => [...document.querySelectorAll('[data-testid="stMetricValue"], [data-testid="stMetricValue"] *')]
    .filter(element => element.scrollWidth > element.clientWidth + 1).map(element => element.innerText)"""
"""The KPI values (or their parts) wider than the box that shows them: cut short with an ellipsis."""


def every_page_shows_data(browser: Browser, url: str, expected: dict[str, str], artifacts: Path) -> None:
    """Walk every page of the dashboard at ``url``: the overview's tiles equal ``expected``, the map draws, the
    trends page draws its five charts, the tables fill, and no page shows an exception. Screenshots go to
    ``artifacts``."""
    artifacts.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    assert tile_values(page) == expected
    for width in (1024, 1400):  # common laptop widths: every tile shows its whole value
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_timeout(500)
        assert page.evaluate(CUT_SHORT) == [], f"tile values cut short at {width} px"
    page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=60_000)
    waits = {"map": '[data-testid="stDeckGlJsonChart"] canvas', "incidents": '[data-testid="stDataFrame"]',
             "vehicles": '[data-testid="stDataFrame"]'}  # fmt: skip
    for name in ("overview", "map", "trends", "incidents", "vehicles"):
        if name != "overview":
            page.goto(f"{url}/{name}")
        if name == "trends":
            assert drawn_charts(page, 5) == 5
        elif name in waits:
            page.wait_for_selector(waits[name], timeout=60_000)
        assert not page.locator('[data-testid="stException"]').count(), name
        page.screenshot(path=artifacts / f"{name}.png", full_page=True)
    page.close()


def expected_tiles(events: dict[str, pd.DataFrame], quarantined: int = 0) -> dict[str, str]:
    """What the overview must show, computed from deduplicated events per stream (with an ``event_time``) and
    the records quarantined in the last 24 hours."""
    latest = max(frame["event_time"].max() for frame in events.values() if len(frame)).floor("h")
    in_hour = {stream: frame[frame["event_time"].dt.floor("h") == latest] for stream, frame in events.items()}
    emergency = events["emergency"].assign(stage=events["emergency"]["status"].map(
        {"reported": 1, "dispatched": 2, "resolved": 3})).sort_values(["event_time", "stage"])  # fmt: skip
    still_open = (emergency.groupby("incident_id")["status"].last() != "resolved").sum()
    return {
        "Vehicles reporting": f"{in_hour['vehicle']['device_id'].nunique():,}",
        "Mean speed": f"{in_hour['vehicle']['speed_kmh'].mean():.1f} km/h" if len(in_hour["vehicle"]) else "n/a",
        "Open incidents": f"{still_open:,}",
        "Worst air quality": f"AQI {in_hour['weather']['aqi'].max()}" if len(in_hour["weather"]) else "n/a",
        "Events, latest hour": f"{sum(len(frame) for frame in in_hour.values()):,}",
        "Quarantined, 24 h": f"{quarantined:,}",
    }
