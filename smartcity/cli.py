"""The ``smartcity`` command: one entry point for operating the platform.

Every subcommand reads the same settings (``SMARTCITY_*`` variables, see ``smartcity config``) and reports
failures as one clear message with a non-zero exit status instead of a traceback.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable
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
    """Create var/ and resolve the JVM jars (Kafka broker, Spark Kafka connector) once."""
    from smartcity.jars import BUNDLES, bundle_dir, resolve

    settings.paths.ensure()
    for bundle in BUNDLES:
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


@cli.command("run")
@_with_settings
def run_command(settings: Settings) -> None:
    """Run the platform in the foreground: the Kafka broker and the Dagster UI. Ctrl-C stops both."""
    from smartcity.platform import run_platform

    run_platform(settings)


def main() -> None:
    """Console-script entry point: turn platform errors into one message and exit status 1."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        cli(standalone_mode=True)
    except PlatformError as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(1)
