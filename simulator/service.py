"""The simulator as a platform service: the city in real time, so data flows as soon as the platform is up."""

from __future__ import annotations

import sys

from smartcity.services import Service
from smartcity.settings import Settings


def simulator_service(settings: Settings) -> Service:
    """Real time, with ``SMARTCITY_SIMULATOR_VEHICLES`` vehicles; it needs the broker and its topics."""
    command = [sys.executable, "-m", "simulator", "--speedup", "1", "--no-progress"]
    command += ["--vehicles", str(settings.simulator_vehicles)]
    return Service(
        name="simulator",
        title="simulator",
        summary=f"real time, {settings.simulator_vehicles} vehicles",
        paths=settings.paths,
        command=lambda: command,
        markers=("simulator", "--no-progress"),
        needs=("kafka",),
    )
