"""Talking to a Kafka cluster: readiness, idempotent topic creation, end offsets, tailing a topic."""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from smartcity.errors import BrokerError, BrokerUnreachable
from smartcity.ports import LOOPBACK
from smartcity.settings import Settings

log = logging.getLogger(__name__)
_librdkafka_log = logging.getLogger("librdkafka")


def client_config(settings: Settings, **extra: object) -> dict[str, object]:
    """Common client settings: the configured brokers, and librdkafka's own logging through Python's."""
    return {"bootstrap.servers": settings.bootstrap_servers, "logger": _librdkafka_log, **extra}


LOOPBACK_HOSTS = ("localhost", "::1", "0.0.0.0", "::", "")
REMEDY = "Start it with `smartcity kafka start`, or check SMARTCITY_KAFKA_BOOTSTRAP_SERVERS."


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(client_config(settings))


def unreachable(settings: Settings, exc: KafkaException) -> BrokerError:
    return BrokerUnreachable(
        f"cannot reach Kafka at {settings.bootstrap_servers} ({exc.args[0].str()}). Is the broker running? {REMEDY}"
    )


def _refused(server: str) -> bool:
    """True when ``server`` (host:port) is on this machine and nothing listens there: an answer in microseconds."""
    host, _, port = server.strip().rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or not (host.startswith("127.") or host in LOOPBACK_HOSTS):
        return False  # a remote broker: only its client's timeout can tell
    try:
        socket.create_connection((LOOPBACK if host in ("0.0.0.0", "") else host, int(port)), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def known_down(settings: Settings) -> str | None:
    """Why no broker can answer, when that is certain without waiting: every bootstrap server is on this machine and
    refuses connections. Remote brokers get the client's timeout (SMARTCITY_KAFKA_TIMEOUT_SECONDS)."""
    servers = settings.bootstrap_servers.split(",")
    if all(_refused(server) for server in servers):
        return f"no Kafka broker listens at {settings.bootstrap_servers}"
    return None


def require_broker(settings: Settings) -> None:
    """Fail at once, with what to do, when no broker can answer (see :func:`known_down`)."""
    if (problem := known_down(settings)) is not None:
        raise BrokerUnreachable(f"{problem}. {REMEDY}")


def wait_until_reachable(settings: Settings, timeout: float) -> bool:
    """True once the cluster answers a metadata request within ``timeout`` seconds."""
    if known_down(settings) is not None:
        return False
    try:
        admin_client(settings).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


def kafka_problem(settings: Settings, timeout: float | None = None) -> BrokerError | None:
    """None when the brokers answer and every configured topic exists; otherwise what is wrong (its message without
    the remedy, which depends on who asks): :class:`BrokerUnreachable`, or a :class:`BrokerError` for a topic."""
    if (problem := known_down(settings)) is not None:
        return BrokerUnreachable(problem)
    try:
        topics = admin_client(settings).list_topics(timeout=timeout or settings.kafka_timeout_seconds).topics
    except KafkaException as exc:
        return BrokerUnreachable(f"cannot reach Kafka at {settings.bootstrap_servers} ({exc.args[0].str()})")
    missing = sorted(set(settings.topics.values()) - set(topics))
    if missing:
        return BrokerError(f"topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}")
    return None


def ensure_topics(settings: Settings, timeout: float = 30.0) -> dict[str, int]:
    """Create the five topics if missing and grow any with too few partitions; return topic → partitions."""
    admin = admin_client(settings)
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise unreachable(settings, exc) from exc
    wanted = settings.kafka_partitions
    missing = [  # replicated as the cluster's default.replication.factor says (three on the test's cluster)
        NewTopic(name, num_partitions=wanted, replication_factor=-1)
        for name in settings.topics.values()
        if name not in existing
    ]
    too_small = [
        NewPartitions(name, wanted)
        for name in settings.topics.values()
        if name in existing and len(existing[name].partitions) < wanted
    ]
    futures = {
        **(admin.create_topics(missing) if missing else {}),
        **(admin.create_partitions(too_small) if too_small else {}),
    }
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].name() not in ("TOPIC_ALREADY_EXISTS",):
                raise BrokerError(f"creating topic {name} failed: {exc}") from exc
    for name in settings.topics.values():
        if name in existing and len(existing[name].partitions) > wanted:
            log.warning(
                "topic %s has %d partitions, more than the configured %d (Kafka cannot shrink it)",
                name,
                len(existing[name].partitions),
                wanted,
            )
    return _settled_partitions(admin, settings, expected=len(futures) > 0, timeout=timeout)


def _settled_partitions(admin: AdminClient, settings: Settings, expected: bool, timeout: float) -> dict[str, int]:
    """Topic → partitions, once the metadata shows what was just created or grown: the broker acknowledges
    the change before every metadata response includes it."""
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        counts = {name: len(topics[name].partitions) for name in settings.topics.values() if name in topics}
        settled = len(counts) == len(settings.topics) and min(counts.values()) >= settings.kafka_partitions
        if settled or not expected or time.monotonic() >= deadline:
            return counts
        time.sleep(0.2)


@dataclass(frozen=True)
class PartitionOffsets:
    topic: str
    partition: int
    low: int
    high: int

    @property
    def messages(self) -> int:
        return self.high - self.low


def topic_offsets(settings: Settings, timeout: float | None = None) -> list[PartitionOffsets]:
    """Low and high watermarks of every partition of the configured topics that exist."""
    require_broker(settings)
    timeout = timeout or settings.kafka_timeout_seconds
    admin = admin_client(settings)
    try:
        metadata = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise unreachable(settings, exc) from exc
    consumer = Consumer(client_config(settings, **{"group.id": f"smartcity-status-{uuid.uuid4()}"}))
    try:
        offsets = []
        for name in settings.topics.values():
            if name not in metadata:
                continue
            for partition in sorted(metadata[name].partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=timeout)
                offsets.append(PartitionOffsets(name, partition, low, high))
        return offsets
    finally:
        consumer.close()


def consume(
    settings: Settings,
    topic: str,
    from_beginning: bool,
    idle_timeout: float | None,
    should_stop: Callable[[], bool] = lambda: False,
    on_start: Callable[[dict[int, int]], None] = lambda _offsets: None,
) -> Iterator[Message]:
    """Yield messages of every partition of ``topic``; stop after ``idle_timeout`` seconds without one.

    ``on_start`` is told each partition's offset where consuming starts (the oldest, or the next new message).
    """
    require_broker(settings)
    consumer = Consumer(
        client_config(
            settings,
            **{
                "group.id": f"smartcity-tail-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
            },
        )
    )
    try:
        metadata = consumer.list_topics(timeout=settings.kafka_timeout_seconds)
        if topic not in metadata.topics:
            known = ", ".join(sorted(t for t in metadata.topics if not t.startswith("__"))) or "none"
            raise BrokerError(
                f"topic {topic!r} does not exist on {settings.bootstrap_servers}; existing topics: {known}"
            )
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, start) for p in partitions])
        watermarks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        on_start({p: low if from_beginning else high for p, (low, high) in watermarks.items()})
        last_message = time.monotonic()
        while not should_stop():
            message = consumer.poll(0.5)
            if message is None:
                if idle_timeout is not None and time.monotonic() - last_message > idle_timeout:
                    return
                continue
            if message.error():
                raise BrokerError(f"consuming {topic} failed: {message.error()}")
            last_message = time.monotonic()
            yield message
    except KafkaException as exc:
        raise unreachable(settings, exc) from exc
    finally:
        consumer.close()


def render(message: Message) -> str:
    """A readable form of a message: a header line, then indented JSON, text, or hex for invalid UTF-8."""
    _, timestamp = message.timestamp()
    when = datetime.fromtimestamp(timestamp / 1000, tz=UTC).isoformat(timespec="milliseconds")
    key = message.key().decode(errors="replace") if message.key() else "-"
    header = f"── {message.topic()}[{message.partition()}]@{message.offset()}  key={key}  ts={when}"
    value = message.value() or b""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return f"{header}\n(invalid UTF-8, {len(value)} bytes) {value[:256].hex()}"
    try:
        return f"{header}\n{json.dumps(json.loads(text), indent=2, ensure_ascii=False)}"
    except json.JSONDecodeError:
        return f"{header}\n(not JSON) {text[:1000]}"
