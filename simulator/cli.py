"""Turn `smartcity simulate` options into a run and an exit status."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import click

from simulator.city import Scenario, start_of
from simulator.faults import FAULT_KINDS, FaultRates
from simulator.run import SimulationOptions, dry_run, produce
from smartcity.errors import PlatformError
from smartcity.settings import Settings


def build_options(values: dict[str, Any]) -> SimulationOptions:
    """Validate the CLI values as a whole (fault rates together, start time) into :class:`SimulationOptions`."""
    try:
        faults = FaultRates.build(values["malformed_rate"], **{kind: values[kind] for kind in FAULT_KINDS})
        start = start_of(values["start"])
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    scenario = Scenario(
        vehicles=values["vehicles"],
        cameras=values["cameras"],
        weather_stations=values["weather_stations"],
        incidents_per_hour=values["incidents_per_hour"],
    )
    return SimulationOptions(
        scenario=scenario,
        seed=values["seed"] if values["seed"] is not None else random.SystemRandom().getrandbits(31),
        start=start,
        rate=values["rate"],
        speedup=values["speedup"],
        max_events=values["max_events"],
        duration=values["duration"],
        faults=faults,
        ledger=values["ledger"],
        delivery_timeout=values["delivery_timeout"],
        progress=values["progress"],
    )


@contextmanager
def _output(target: str) -> Iterator[BinaryIO]:
    """The dry run's destination: stdout for '-', else the file (with a clear error if it cannot be written)."""
    if target == "-":
        yield sys.stdout.buffer
        return
    try:
        with Path(target).open("wb") as handle:
            yield handle
    except OSError as exc:
        raise PlatformError(f"cannot write {target}: {exc.strerror}") from exc


def simulate(settings: Settings, values: dict[str, Any]) -> int:
    """Run the simulation; print the summary on stderr; 0 when everything sent was acknowledged."""
    options = build_options(values)
    target = values["dry_run_to"]
    if target is None:
        summary = produce(settings, options)
    else:
        with _output(target) as out:
            summary = dry_run(settings, options, out)
    click.echo(summary.render(dry_run=target is not None), err=True)
    return 0 if summary.ok or (target is not None and summary.error is None) else 1
