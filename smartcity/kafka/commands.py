"""`smartcity kafka …`: run and inspect the local broker, list offsets, tail a topic."""

from __future__ import annotations

from dataclasses import replace

import click

from smartcity.commands import start_service, stop_service, with_settings
from smartcity.errors import PlatformError
from smartcity.settings import Settings


@click.group("kafka")
def kafka_group() -> None:
    """Run and inspect the local Apache Kafka broker (single KRaft node)."""


@kafka_group.command("start")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for the broker to answer.")
@with_settings
def kafka_start(settings: Settings, timeout: float) -> None:
    """Start the broker (a no-op if it runs), wait until ready, and create the topics."""
    from smartcity.kafka.broker import broker_service

    start_service(replace(broker_service(settings), ready_timeout=timeout), "kafka broker",
                  f" on {settings.bootstrap_servers}")  # fmt: skip


@kafka_group.command("stop")
@with_settings
def kafka_stop(settings: Settings) -> None:
    """Stop the broker with a controlled shutdown."""
    from smartcity.kafka.broker import broker_service

    stop_service(broker_service(settings), "kafka broker")


@kafka_group.command("status")
@with_settings
def kafka_status(settings: Settings) -> None:
    """Show whether the broker runs, and each topic's partitions with their end offsets."""
    from smartcity.kafka.admin import topic_offsets
    from smartcity.kafka.broker import broker_service

    pid = broker_service(settings).pid()
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
@with_settings
def kafka_tail(
    settings: Settings, topic: str, from_beginning: bool, max_messages: int | None, idle_timeout: float | None
) -> None:
    """Consume TOPIC and pretty-print each message (JSON indented; invalid payloads shown as such); Ctrl-C ends it.

    By default it waits for new messages, saying so on stderr; --from-beginning shows what is there first.
    """
    from smartcity.kafka.admin import consume, render

    def announce(offsets: dict[int, int]) -> None:
        where = ", ".join(f"{partition}@{offset}" for partition, offset in offsets.items())
        wait = f"stopping after {idle_timeout:g}s without one" if idle_timeout else "Ctrl-C stops"
        what = "messages from the oldest" if from_beginning else "new messages"
        click.echo(f"waiting for {what} on {topic} (partition@offset: {where}); {wait}", err=True)

    count = 0
    try:
        for count, message in enumerate(consume(settings, topic, from_beginning, idle_timeout, on_start=announce), 1):
            click.echo(render(message))
            if max_messages is not None and count >= max_messages:
                break
    except KeyboardInterrupt:
        pass  # the way to stop tailing: not a failure
    click.echo(f"{count} message(s) shown", err=True)
