"""`smartcity status`: every service up or down, the stream's progress, the asset graph's and the gold data's.

Read-only and quick: pid files, Spark's checkpoint, Kafka's end offsets, the Dagster instance's materialized
partitions (grouped by asset key, without loading the code location), and the warehouse's newest event time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from smartcity.errors import PlatformError
from smartcity.settings import Settings
from smartcity_dagster.assets.keys import GROUP_OF_PREFIX, STEPS
from smartcity_dagster.services import dagster_home
from smartcity_ops.services import services


def components(settings: Settings) -> dict[str, str]:
    """Service → 'up (pid …, what it offers)' or 'down'."""
    states = {}
    for service in services(settings):
        pid = service.pid()
        states[service.name] = f"up (pid {pid}, {service.summary})" if pid else "down"
    return states


def stream_lines(settings: Settings) -> list[str]:
    from spark_streaming.control import stream_status

    try:
        status = stream_status(settings)
    except PlatformError as problem:  # the broker is down: offsets unknown
        return [f"stream: {problem}"]
    age = "" if status.last_commit_age_s is None else f", {status.last_commit_age_s:.0f}s ago"
    lag = sum(status.lag.values())
    return [f"last committed batch: {status.last_batch if status.last_batch is not None else 'none'}{age}",
            f"Kafka end offsets: {sum(status.end_offsets.values()):,}; stream lag: {lag:,} records"]  # fmt: skip


def newest_partitions(settings: Settings) -> dict[str, str]:
    """Asset group → newest materialized partition (hour) in the Dagster instance under var/."""
    import dagster as dg

    home = dagster_home(settings)
    if not (home / "dagster.yaml").exists():
        return {}
    groups: dict[str, str] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for key in instance.get_asset_keys():
            partitions = instance.get_materialized_partitions(key)
            group = GROUP_OF_PREFIX.get(key.path[0])  # None: an asset of an older version of the graph
            if group and partitions and max(partitions) > groups.get(group, ""):
                groups[group] = max(partitions)
    return groups


def freshness(settings: Settings) -> str:
    from dashboard.data import kpis
    from dashboard.warehouse import NoData, WarehouseUnavailable

    try:
        as_of = kpis(settings.warehouse).data_as_of
    except (NoData, WarehouseUnavailable) as problem:
        return f"unknown ({problem})"
    if as_of is None:
        return "no data yet"
    age = datetime.now(UTC).replace(tzinfo=None) - as_of
    return f"newest event {as_of:%Y-%m-%d %H:%M:%S} UTC ({age.total_seconds() / 60:.1f} min old)"


def report(settings: Settings) -> str:
    lines = ["components"]
    lines += [f"  {name:10s} {state}" for name, state in components(settings).items()]
    lines += ["stream", *[f"  {line}" for line in stream_lines(settings)]]
    groups = newest_partitions(settings)
    lines += ["newest materialized hour per asset group"]
    lines += [f"  {group:10s} {groups.get(group, 'none')}" for group in ("ingestion", *STEPS)]
    lines += ["gold data", f"  {freshness(settings)}"]
    return "\n".join(lines)


def status_line(settings: Settings) -> str:
    """One line for the running main job: events in Kafka, the stream's lag, the gold data's freshness."""
    from smartcity.kafka.admin import topic_offsets
    from spark_streaming.control import committed_offsets
    from spark_streaming.lake import last_committed_batch
    from spark_streaming.paths import StreamPaths

    checkpoint = StreamPaths.of(settings).checkpoint
    try:
        ends = {(row.topic, row.partition): row.high for row in topic_offsets(settings, timeout=5)}
    except PlatformError:
        return f"{datetime.now(UTC):%H:%M:%S} Kafka unreachable"
    committed = committed_offsets(checkpoint, last_committed_batch(checkpoint))
    lag = sum(end - committed.get(key, 0) for key, end in ends.items())
    now = f"{datetime.now(UTC):%H:%M:%S}"
    return f"{now} events in Kafka {sum(ends.values()):,} · stream lag {lag:,} · gold: {freshness(settings)}"
