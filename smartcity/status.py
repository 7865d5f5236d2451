"""`smartcity status`: every component up or down, the stream's progress, the asset graph's and the gold data's.

Read-only and quick: process and port probes, Spark's checkpoint, Kafka's end offsets, the Dagster instance's
newest materialization per asset group, and the warehouse's newest event time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from smartcity.errors import PlatformError
from smartcity.kafka.broker import LocalBroker
from smartcity.settings import Settings


def components(settings: Settings) -> dict[str, str]:
    """Component → 'up …' or 'down'."""
    from smartcity.platform import answers, dagster_url, dashboard_url, service_pid, spark_connect_address
    from spark_streaming.control import running_pid

    broker = LocalBroker(settings).running_pid()
    stream = running_pid(settings)
    daemon, spark = service_pid(settings, "daemon"), service_pid(settings, "spark")
    return {
        "kafka": f"up (pid {broker}, {settings.bootstrap_servers})" if broker else "down",
        "stream": f"up (pid {stream})" if stream else "down",
        "spark": f"up (pid {spark}, Spark Connect on {spark_connect_address(settings)})" if spark else "down",
        "daemon": f"up (pid {daemon})" if daemon else "down",
        "dagster": f"up ({dagster_url(settings)})" if answers(f"{dagster_url(settings)}/server_info") else "down",
        "dashboard": f"up ({dashboard_url(settings)})"
        if answers(f"{dashboard_url(settings)}/_stcore/health")
        else "down",
    }


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

    from smartcity.platform import dagster_environment
    from smartcity_dagster.definitions import build_definitions

    home = dagster_environment(settings)["DAGSTER_HOME"]
    groups: dict[str, str] = {}
    with dg.DagsterInstance.from_config(home) as instance:
        for node in build_definitions(settings).resolve_asset_graph().asset_nodes:
            if node.partitions_def is None:
                continue
            event = instance.get_latest_materialization_event(node.key)
            partition = event.dagster_event.partition if event and event.dagster_event else None
            if partition and partition > groups.get(node.group_name or "", ""):
                groups[node.group_name or ""] = partition
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
    lines += [f"  {group:10s} {groups.get(group, 'none')}" for group in ("ingestion", "catalog", "processed", "gold",
                                                                          "warehouse")]  # fmt: skip
    lines += ["gold data", f"  {freshness(settings)}"]
    return "\n".join(lines)


def status_line(settings: Settings) -> str:
    """One line for the running main job: events in Kafka, the stream's lag, the gold data's freshness."""
    from smartcity.kafka.admin import topic_offsets
    from spark_streaming.control import committed_offsets
    from spark_streaming.job import StreamPaths
    from spark_streaming.lake import last_committed_batch

    checkpoint = StreamPaths.of(settings).checkpoint
    try:
        ends = {(row.topic, row.partition): row.high for row in topic_offsets(settings, timeout=5)}
    except PlatformError:
        return f"{datetime.now(UTC):%H:%M:%S} Kafka unreachable"
    committed = committed_offsets(checkpoint, last_committed_batch(checkpoint))
    lag = sum(end - committed.get(key, 0) for key, end in ends.items())
    now = f"{datetime.now(UTC):%H:%M:%S}"
    return f"{now} events in Kafka {sum(ends.values()):,} · stream lag {lag:,} · gold: {freshness(settings)}"
