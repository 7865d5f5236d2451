"""`smartcity simulate`: its options, validated together into a run, and the run's exit status."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import click

from simulator.city import Scenario, start_of
from simulator.faults import FAULT_KINDS, FaultRates
from simulator.run import SimulationOptions, dry_run, produce
from smartcity.commands import with_settings
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
    """Run the simulation; print the summary; 0 when everything sent was acknowledged."""
    options = build_options(values)
    target = values["dry_run_to"]
    if target is None:
        summary = produce(settings, options)
    else:
        with _output(target) as out:
            summary = dry_run(settings, options, out)
    # The summary is the result (stdout), unless the events themselves go to stdout.
    click.echo(summary.render(dry_run=target is not None), err=target == "-")
    return 0 if summary.ok or (target is not None and summary.error is None) else 1


def _fault_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One ``--<kind>-rate`` option per fault kind, plus ``--malformed-rate`` spread over the malformed kinds."""
    for kind in reversed(FAULT_KINDS):
        command = click.option(
            f"--{kind.replace('_', '-')}-rate",
            kind,
            type=click.FloatRange(0, 1),
            default=0.0,
            help=f"Fraction of events sent as {kind.replace('_', ' ')}.",
        )(command)
    return click.option(
        "--malformed-rate",
        type=click.FloatRange(0, 1),
        default=0.0,
        help="Fraction of malformed events, spread evenly over the six malformed kinds.",
    )(command)


@click.command("simulate")
@click.option("--vehicles", type=click.IntRange(min=1), default=50, show_default=True, help="Fleet size.")
@click.option("--cameras", type=click.IntRange(min=1), default=12, show_default=True, help="Traffic cameras.")
@click.option("--weather-stations", type=click.IntRange(min=1), default=6, show_default=True,
              help="Weather stations, spread along the corridor.")  # fmt: skip
@click.option(
    "--incidents-per-hour",
    type=click.FloatRange(min=0),
    default=12.0,
    show_default=True,
    help="Mean rate of emergency incidents (a Poisson process), each reported, dispatched, resolved.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Cap on messages per second (0: no cap).",
)
@click.option(
    "--speedup",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second (1: real time; 0: as fast as possible).",
)
@click.option("--max-events", type=click.IntRange(min=1), help="Stop after generating this many events.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")
@click.option("--seed", type=int, help="Random seed; the same seed and --start give the same events.")
@click.option("--start", help="Simulated start time, ISO 8601 (default: now, UTC).")
@click.option(
    "--dry-run",
    "dry_run_to",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write JSON lines to this file ('-' for stdout) instead of sending to Kafka.",
)
@click.option(
    "--ledger",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV of every acknowledged message: event_id, topic, partition, offset, valid, fault.",
)
@click.option(
    "--delivery-timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds before an undelivered message counts as failed.",
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@_fault_options
@with_settings
def simulate_command(settings: Settings, **options: Any) -> None:
    """Simulate the city's devices and send their events to Kafka (or to a file with --dry-run)."""
    sys.exit(simulate(settings, options))
