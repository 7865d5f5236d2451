"""`smartcity status`: every service up or down, the stream's progress, the asset graph's and the gold data's, and
an exit status saying whether the platform is healthy.

Read-only and quick: pid files, Spark's checkpoint, Kafka's end offsets (not asked when no broker listens), the
Dagster instance's materialized partitions (grouped by asset key, without loading the code location; not opened
when there is none), and the warehouse's newest event time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from smartcity.commands import describe_failure
from smartcity.errors import ExitCode, PlatformError
from smartcity.settings import Settings
from smartcity.warehouse_url import parse_warehouse_url
from smartcity_dagster.assets.groups import GROUP_OF_PREFIX, INGESTION, STEPS
from smartcity_dagster.services import dagster_home
from smartcity_ops.services import services

OPTIONAL = frozenset({"simulator"})
"""Services whose absence leaves the platform healthy: devices may send the events instead of the simulator."""


@dataclass
class ServiceState:
    up: bool
    pid: int | None
    summary: str


@dataclass
class StreamState:
    last_batch: int | None = None
    last_commit_age_s: float | None = None
    kafka_end_offsets: int | None = None
    lag: int | None = None
    problem: str | None = None


@dataclass
class GoldState:
    newest_event: str | None = None
    age_minutes: float | None = None
    problem: str | None = None


@dataclass
class Health:
    services: dict[str, ServiceState]
    stream: StreamState
    newest_hour: dict[str, str | None]
    gold: GoldState
    exit_code: ExitCode = field(init=False)

    def __post_init__(self) -> None:
        running = [name for name, state in self.services.items() if state.up]
        missing = [name for name, state in self.services.items() if not state.up and name not in OPTIONAL]
        if not running:
            self.exit_code = ExitCode.DOWN
        elif missing or self.stream.problem is not None:
            self.exit_code = ExitCode.DEGRADED
        else:
            self.exit_code = ExitCode.OK


def service_states(settings: Settings) -> dict[str, ServiceState]:
    states = {}
    for service in services(settings):
        pid = service.pid()
        states[service.name] = ServiceState(pid is not None, pid, service.summary)
    return states


def stream_state(settings: Settings) -> StreamState:
    from spark_streaming.control import stream_status

    try:
        status = stream_status(settings)
    except Exception as problem:  # the broker is down, the lake unreadable: say which, and go on
        return StreamState(problem=describe_failure(problem)[0])
    return StreamState(status.last_batch, status.last_commit_age_s, sum(status.end_offsets.values()),
                       sum(status.lag.values()))  # fmt: skip


def newest_partitions(settings: Settings) -> dict[str, str]:
    """Asset group → newest materialized partition (hour) in the Dagster instance under var/."""
    home = dagster_home(settings)
    if not (home / "dagster.yaml").exists():
        return {}
    import dagster as dg  # a second to import: only when there is an instance to read

    groups: dict[str, str] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for key in instance.get_asset_keys():
            partitions = instance.get_materialized_partitions(key)
            group = GROUP_OF_PREFIX.get(key.path[0])  # None: an asset of an older version of the graph
            if group and partitions and max(partitions) > groups.get(group, ""):
                groups[group] = max(partitions)
    return groups


def gold_state(settings: Settings) -> GoldState:
    warehouse = parse_warehouse_url(settings.warehouse)
    if warehouse.engine == "duckdb" and not warehouse.duckdb_file.exists():  # answered without importing pandas
        return GoldState(problem=f"the warehouse file {warehouse.duckdb_file} does not exist yet")
    from dashboard.data import kpis
    from dashboard.warehouse import NoData, WarehouseUnavailable

    try:
        as_of = kpis(settings.warehouse).data_as_of
    except (NoData, WarehouseUnavailable) as problem:
        return GoldState(problem=str(problem))
    except Exception as problem:
        return GoldState(problem=describe_failure(problem)[0])
    if as_of is None:
        return GoldState(problem="no data yet")
    age = datetime.now(UTC).replace(tzinfo=None) - as_of
    return GoldState(f"{as_of:%Y-%m-%d %H:%M:%S}", round(age.total_seconds() / 60, 1))


def health(settings: Settings) -> Health:
    newest = newest_partitions(settings)
    return Health(service_states(settings), stream_state(settings),
                  {group: newest.get(group) for group in (INGESTION, *STEPS)}, gold_state(settings))  # fmt: skip


def freshness(gold: GoldState) -> str:
    if gold.newest_event is None:
        return f"unknown ({gold.problem})" if gold.problem != "no data yet" else "no data yet"
    if gold.age_minutes is not None and gold.age_minutes < 0:  # a clock ahead: the device's, or this machine's behind
        return f"newest event {gold.newest_event} UTC ({-gold.age_minutes:.1f} min ahead of this machine's clock)"
    return f"newest event {gold.newest_event} UTC ({gold.age_minutes:.1f} min old)"


def render(state: Health) -> str:
    lines = ["components"]
    lines += [f"  {name:10s} {f'up (pid {s.pid}, {s.summary})' if s.up else 'down'}"
              for name, s in state.services.items()]  # fmt: skip
    stream = state.stream
    if stream.problem is not None:
        lines += ["stream", f"  {stream.problem}"]
    else:
        age = "" if stream.last_commit_age_s is None else f", {stream.last_commit_age_s:.0f}s ago"
        batch = stream.last_batch if stream.last_batch is not None else "none"
        lines += ["stream", f"  last committed batch: {batch}{age}",
                  f"  Kafka end offsets: {stream.kafka_end_offsets:,}; stream lag: {stream.lag:,} records"]  # fmt: skip
    lines += ["newest materialized hour per asset group"]
    lines += [f"  {group:10s} {hour or 'none'}" for group, hour in state.newest_hour.items()]
    lines += ["gold data", f"  {freshness(state.gold)}"]
    verdict = {ExitCode.OK: "healthy", ExitCode.DEGRADED: "degraded", ExitCode.DOWN: "not running"}
    lines += [f"platform: {verdict[state.exit_code]} (exit status {state.exit_code.value})"]
    return "\n".join(lines)


def as_json(state: Health) -> str:
    document = asdict(state)
    document["exit_code"] = state.exit_code.value
    document["healthy"] = state.exit_code == ExitCode.OK
    return json.dumps(document, indent=2)


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
    gold = freshness(gold_state(settings))
    return f"{datetime.now(UTC):%H:%M:%S} events in Kafka {sum(ends.values()):,} · stream lag {lag:,} · gold: {gold}"
