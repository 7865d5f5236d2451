"""`smartcity stream …`: start, stop, inspect and compact the ingestion stream."""

from __future__ import annotations

import logging
import time
from collections import Counter

import click

from smartcity.commands import start_service, stop_service, with_settings
from smartcity.settings import Settings


@click.group("stream")
def stream_group() -> None:
    """Run and inspect the Spark Structured Streaming ingestion (Kafka → raw zone + quarantine)."""


@stream_group.command("start")
@click.option("--available-now", is_flag=True, help="Drain what is in Kafka, commit, and stop (foreground).")
@click.option("--foreground", is_flag=True, help="Run continuously in this terminal instead of the background.")
@with_settings
def stream_start(settings: Settings, available_now: bool, foreground: bool) -> None:
    """Start the ingestion stream (continuous in the background unless told otherwise).

    In the foreground it prints a line per committed batch and a total at the end; the JVM's own output goes to
    the stream's log file (with -v, to the terminal).
    """
    from smartcity.kafka.admin import require_broker
    from spark_streaming.control import stream_service

    if available_now or foreground:
        run_in_terminal(settings, available_now)
        return
    require_broker(settings)  # a local broker that does not run: say so now, not after the start-up timeout
    start_service(stream_service(settings), "stream")


def run_in_terminal(settings: Settings, available_now: bool) -> None:
    """The stream in this process, reporting each batch on stdout and the total when it ends."""
    from spark_streaming.control import run_foreground, stream_service
    from spark_streaming.job import BatchReport, describe

    reports: list[BatchReport] = []

    def report(batch: BatchReport) -> None:
        reports.append(batch)
        summary = describe(batch.records, batch.raw_rows, batch.quarantined)
        click.echo(f"batch {batch.batch_id}: {summary} in {batch.seconds:.1f}s")

    started = time.monotonic()
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    click.echo(f"stream {'draining Kafka' if available_now else 'running'} (JVM log: "
               f"{'this terminal' if verbose else stream_service(settings).log_file})", err=True)  # fmt: skip
    run_foreground(settings, available_now=available_now, on_batch=report, quiet_jvm=not verbose)
    quarantined = sum((Counter(batch.quarantined) for batch in reports), Counter())
    total = describe(sum(b.records for b in reports), sum(b.raw_rows for b in reports), quarantined)
    click.echo(f"{len(reports)} batch(es) committed, {total}, in {time.monotonic() - started:.1f}s")


@stream_group.command("stop")
@with_settings
def stream_stop(settings: Settings) -> None:
    """Stop the background stream after its running batch commits."""
    from spark_streaming.control import stream_service

    stop_service(stream_service(settings), "stream")


@stream_group.command("status")
@with_settings
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
@with_settings
def stream_compact(settings: Settings, min_files: int) -> None:
    """Rewrite each raw and quarantine hour's committed files as one; readers see the old hour or the new."""
    from spark_streaming.lake import compact_lake
    from spark_streaming.paths import StreamPaths

    paths = StreamPaths.of(settings)
    compacted = compact_lake(paths.lake, paths.checkpoint, min_files)
    for path in compacted:
        click.echo(f"compacted {path}")
    click.echo(f"{len(compacted)} hour(s) compacted")
