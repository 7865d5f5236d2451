"""How the dashboard is served: Streamlit running ``dashboard/app.py`` on the configured address, as one of the
platform's services (`smartcity up`) or in the foreground (`smartcity dashboard`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from smartcity.commands import with_settings
from smartcity.services import Port, Service, answers
from smartcity.settings import Settings
from smartcity.warehouse_url import redact

APP = Path(__file__).resolve().parent / "app.py"


def dashboard_url(settings: Settings) -> str:
    return f"http://{settings.dashboard_host}:{settings.dashboard_port}"


def streamlit_command(settings: Settings) -> list[str]:
    """Streamlit serving the app on the configured address, headless, without usage statistics."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", settings.dashboard_host, "--server.port", str(settings.dashboard_port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
    ]  # fmt: skip


def dashboard_service(settings: Settings) -> Service:
    """The dashboard as a platform service, ready once Streamlit's health endpoint answers."""
    url = dashboard_url(settings)
    return Service(
        name="dashboard",
        title="dashboard",
        summary=url,
        paths=settings.paths,
        command=lambda: streamlit_command(settings),
        markers=("streamlit", str(APP)),
        ports=(Port(settings.dashboard_host, settings.dashboard_port, "DASHBOARD_PORT"),),
        ready=lambda _pid: answers(f"{url}/_stcore/health"),
        ready_timeout=120.0,
    )


@click.command("dashboard")
@with_settings
def dashboard_command(settings: Settings) -> None:
    """Serve the Streamlit dashboard over the warehouse in the foreground (Ctrl-C stops it)."""
    click.echo(f"dashboard on {dashboard_url(settings)} (warehouse {redact(settings.warehouse)})")
    raise SystemExit(subprocess.call(streamlit_command(settings)))
