"""The ``smartcity`` command: one entry point for operating the platform.

Every subcommand reads the same settings (``SMARTCITY_*`` variables, see ``smartcity config``) and reports
failures as one clear message with a non-zero exit status instead of a traceback.
"""

from __future__ import annotations

import functools
import logging
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from smartcity.errors import PlatformError
from smartcity.settings import Settings, load_settings


def _with_settings(command: Callable[..., Any]) -> Callable[..., Any]:
    """Load (and validate) the settings when the command runs, so ``--help`` works even with a bad config."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(load_settings(), *args, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """Operate the smart-city data platform (local profile by default; see `smartcity config`)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not verbose:
        logging.getLogger("librdkafka").setLevel(logging.CRITICAL)


@cli.command("config")
@_with_settings
def config_command(settings: Settings) -> None:
    """Validate the configuration and print every setting with its effective value."""
    for variable, value in settings.public_items().items():
        click.echo(f"{variable}={value}")


@cli.command("setup")
@_with_settings
def setup_command(settings: Settings) -> None:
    """Create var/ and resolve the JVM jars (Kafka broker, Spark Kafka connector, S3A for an S3 lake) once."""
    from smartcity.jars import bundle_dir, needed_bundles, resolve

    settings.paths.ensure()
    for bundle in needed_bundles(settings):
        resolve(settings, bundle)
        click.echo(f"{bundle.name}: {len(list(bundle_dir(settings, bundle).glob('*.jar')))} jars ready")


@cli.group("kafka")
def kafka_group() -> None:
    """Run and inspect the local Apache Kafka broker (single KRaft node)."""


@kafka_group.command("start")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for the broker to answer.")
@_with_settings
def kafka_start(settings: Settings, timeout: float) -> None:
    """Start the broker (a no-op if it runs), wait until ready, and create the topics."""
    from smartcity.kafka.broker import LocalBroker

    broker = LocalBroker(settings)
    result = broker.start(timeout=timeout)
    state = "already running" if result.already_running else "started"
    click.echo(f"kafka broker {state} (pid {result.pid}) on {settings.bootstrap_servers}; log: {broker.log_file}")


@kafka_group.command("stop")
@_with_settings
def kafka_stop(settings: Settings) -> None:
    """Stop the broker with a controlled shutdown."""
    from smartcity.kafka.broker import LocalBroker

    pid = LocalBroker(settings).stop()
    click.echo("kafka broker was not running" if pid is None else f"kafka broker stopped (pid {pid})")


@kafka_group.command("status")
@_with_settings
def kafka_status(settings: Settings) -> None:
    """Show whether the broker runs, and each topic's partitions with their end offsets."""
    from smartcity.kafka.admin import topic_offsets
    from smartcity.kafka.broker import LocalBroker

    pid = LocalBroker(settings).running_pid()
    click.echo(f"local broker: {'running (pid ' + str(pid) + ')' if pid else 'not running'}")
    offsets = topic_offsets(settings)
    click.echo(f"bootstrap servers: {settings.bootstrap_servers}")
    click.echo(f"{'topic':<20} {'partition':>9} {'start offset':>12} {'end offset':>12} {'messages':>10}")
    for row in offsets:
        click.echo(f"{row.topic:<20} {row.partition:>9} {row.low:>12} {row.high:>12} {row.messages:>10}")
    missing = sorted(set(settings.topics.values()) - {row.topic for row in offsets})
    if missing:
        raise PlatformError(f"missing topic(s): {', '.join(missing)}; run `smartcity kafka start` to create them")


@kafka_group.command("tail")
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest message instead of new ones.")
@click.option("-n", "--max-messages", type=click.IntRange(min=1), help="Stop after this many messages.")
@click.option("--idle-timeout", type=float, help="Stop after this many seconds without a message.")
@_with_settings
def kafka_tail(
    settings: Settings, topic: str, from_beginning: bool, max_messages: int | None, idle_timeout: float | None
) -> None:
    """Consume TOPIC and pretty-print each message (JSON indented; invalid payloads shown as such)."""
    from smartcity.kafka.admin import consume, render

    for count, message in enumerate(consume(settings, topic, from_beginning, idle_timeout), start=1):
        click.echo(render(message))
        if max_messages is not None and count >= max_messages:
            break


def _fault_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One ``--<kind>-rate`` option per fault kind, plus ``--malformed-rate`` spread over the malformed kinds."""
    from simulator.faults import FAULT_KINDS

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


@cli.command("simulate")
@click.option("--vehicles", type=click.IntRange(min=1), default=50, show_default=True, help="Fleet size.")
@click.option("--cameras", type=click.IntRange(min=1), default=12, show_default=True, help="Traffic cameras.")
@click.option("--weather-stations", type=click.IntRange(min=1), default=6, show_default=True)
@click.option("--incidents-per-hour", type=click.FloatRange(min=0), default=12.0, show_default=True)
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
@_with_settings
def simulate_command(settings: Settings, **options: Any) -> None:
    """Simulate the city's devices and send their events to Kafka (or to a file with --dry-run)."""
    from simulator.cli import simulate

    sys.exit(simulate(settings, options))


@cli.group("stream")
def stream_group() -> None:
    """Run and inspect the Spark Structured Streaming ingestion (Kafka → raw zone + quarantine)."""


@stream_group.command("start")
@click.option("--available-now", is_flag=True, help="Drain what is in Kafka, commit, and stop (foreground).")
@click.option("--foreground", is_flag=True, help="Run continuously in this terminal instead of the background.")
@_with_settings
def stream_start(settings: Settings, available_now: bool, foreground: bool) -> None:
    """Start the ingestion stream (continuous in the background unless told otherwise)."""
    from spark_streaming.control import log_file, run_foreground, start_background

    if available_now or foreground:
        run_foreground(settings, available_now=available_now)
        return
    pid, already = start_background(settings)
    click.echo(f"stream {'already running' if already else 'started'} (pid {pid}); log: {log_file(settings)}")


@stream_group.command("stop")
@_with_settings
def stream_stop(settings: Settings) -> None:
    """Stop the background stream after its running batch commits."""
    from spark_streaming.control import stop_background

    pid = stop_background(settings)
    click.echo("stream was not running" if pid is None else f"stream stopped (pid {pid})")


@stream_group.command("status")
@_with_settings
def stream_status_command(settings: Settings) -> None:
    """Last committed batch, committed offsets and lag per partition, rows landed and quarantined."""
    from spark_streaming.control import stream_status

    status = stream_status(settings)
    click.echo(f"stream: {'running (pid ' + str(status.pid) + ')' if status.pid else 'not running'}")
    if status.last_batch is None:
        click.echo("no batch committed yet")
    else:
        click.echo(f"last committed batch: {status.last_batch} ({status.last_commit_age_s:.0f}s ago)")
    click.echo(f"{'topic':<20} {'partition':>9} {'committed':>12} {'end offset':>12} {'lag':>10}")
    lag = status.lag
    for (topic, partition), end in sorted(status.end_offsets.items()):
        committed = status.committed.get((topic, partition), 0)
        click.echo(f"{topic:<20} {partition:>9} {committed:>12} {end:>12} {lag[topic, partition]:>10}")
    click.echo(f"total lag: {sum(lag.values())}")
    for topic, rows in sorted(status.raw_rows.items()):
        click.echo(f"raw rows      {topic:<20} {rows:>10}")
    for key, rows in sorted(status.quarantined.items()):
        click.echo(f"quarantined   {key:<34} {rows:>10}")


@stream_group.command("compact")
@click.option("--min-files", type=click.IntRange(min=2), default=2, show_default=True,
              help="Compact hour directories holding at least this many files.")  # fmt: skip
@_with_settings
def stream_compact(settings: Settings, min_files: int) -> None:
    """Rewrite each raw and quarantine hour's committed files as one; readers see the old hour or the new."""
    from spark_streaming.control import compact

    compacted = compact(settings, min_files)
    for path in compacted:
        click.echo(f"compacted {path}")
    click.echo(f"{len(compacted)} hour(s) compacted")


SERVICE_NAMES = ("simulator", "stream", "spark", "daemon", "dagster", "dashboard")


@cli.command("up")
@click.argument("services", nargs=-1, type=click.Choice(SERVICE_NAMES))
@click.option("--simulate/--no-simulate", default=True, show_default=True, help="Start the city simulator too.")
@_with_settings
def up_command(settings: Settings, services: tuple[str, ...], simulate: bool) -> None:
    """Start the platform in the background; `down` stops it.

    With no SERVICES: the broker, simulator, stream, Spark Connect server (processing), Dagster daemon, Dagster
    UI and dashboard. Naming SERVICES
    starts only those (and the broker); services already up are left alone, so after a crash `up` restarts what
    is missing.
    """
    from smartcity.platform import dagster_url, dashboard_url, up

    names = list(services or SERVICE_NAMES)
    if not simulate and "simulator" in names:
        names.remove("simulator")
    for name, state in up(settings, names).items():
        click.echo(f"  {name:10s} {state}")
    click.echo(f"dashboard {dashboard_url(settings)} · Dagster {dagster_url(settings)} · logs {settings.paths.logs}")


@cli.command("down")
@_with_settings
def down_command(settings: Settings) -> None:
    """Stop every service and the broker; each stops gracefully (the stream commits its batch)."""
    from smartcity.platform import down

    for name, state in down(settings).items():
        click.echo(f"  {name:10s} {state}")


@cli.command("status")
@_with_settings
def status_command(settings: Settings) -> None:
    """Show each component up or down, the stream's lag, the newest hour per asset group and data freshness."""
    from smartcity.status import report

    click.echo(report(settings))


@cli.command("dashboard")
@_with_settings
def dashboard_command_(settings: Settings) -> None:
    """Serve the Streamlit dashboard over the warehouse in the foreground (Ctrl-C stops it)."""
    from smartcity.platform import dashboard_command, dashboard_url

    click.echo(
        f"dashboard on {dashboard_url(settings)} (warehouse {settings.public_items()['SMARTCITY_WAREHOUSE_URL']})"
    )
    raise SystemExit(subprocess.call(dashboard_command(settings)))


@cli.command("run")
@click.option("--simulate/--no-simulate", default=True, show_default=True, help="Run the city simulator too.")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Run the ingestion stream too.")
@click.option(
    "--fresh", is_flag=True, help="Wipe var/ (broker data, lake, checkpoints, warehouse, Dagster; not the jars) first."
)
@_with_settings
def run_command(settings: Settings, simulate: bool, stream: bool, fresh: bool) -> None:
    """Run the platform in the foreground: broker, simulator, stream, Dagster (daemon and UI), dashboard.

    Ctrl-C stops them all.

    Running it again resumes where it stopped (Kafka, the stream's checkpoint and Dagster's cursors persist in
    var/); --fresh starts over from nothing.
    """
    from smartcity.platform import run_platform, wipe_runtime_state

    if fresh:
        for path in wipe_runtime_state(settings):
            click.echo(f"removed {path}")
    wanted = {"simulator": simulate, "stream": stream}
    run_platform(settings, [name for name in SERVICE_NAMES if wanted.get(name, True)])


def main() -> None:
    """Console-script entry point: turn platform errors into one message and exit status 1."""
    # Started from a non-interactive shell in the background, SIGINT arrives ignored; handle it explicitly, so
    # Ctrl-C / SIGINT stops us and the processes we start (exec resets handled signals to their default).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        cli(standalone_mode=True)
    except PlatformError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
