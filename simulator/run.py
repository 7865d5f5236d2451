"""Run a simulation: pace the messages, send them to Kafka (or write a dry run), keep the ledger, summarise.

Kafka delivery is idempotent (``enable.idempotence``, ``acks=all``), batched and compressed; delivery
callbacks count every acknowledged and failed message, and the optional ledger records each acknowledged one
(event id, topic, partition, offset, validity, fault) so tests downstream can prove nothing was lost or
duplicated. A broker that is down at start, a missing topic or a broker that stops answering mid-run ends the
run with a clear error in bounded time.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from confluent_kafka import KafkaError, Producer
from tqdm import tqdm

from simulator.city import City, Event, Scenario
from simulator.faults import FaultInjector, FaultRates
from simulator.stream import envelope, messages
from smartcity.errors import PlatformError
from smartcity.kafka.admin import client_config, kafka_problem
from smartcity.processes import graceful_stop
from smartcity.settings import Settings

log = logging.getLogger(__name__)
LEDGER_HEADER = "event_id,topic,partition,offset,valid,fault\n"


@dataclass(frozen=True)
class SimulationOptions:
    scenario: Scenario
    seed: int
    start: datetime
    rate: float = 0.0  # messages per wall-clock second; 0 = no cap
    speedup: float = 1.0  # simulated seconds per wall-clock second; 0 = as fast as possible
    max_events: int | None = None
    duration: float | None = None  # wall-clock seconds
    faults: FaultRates = field(default_factory=FaultRates)
    ledger: Path | None = None
    delivery_timeout: float = 60.0
    progress: bool = True


@dataclass
class Summary:
    seed: int
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    by_stream: Counter = field(default_factory=Counter)
    by_fault: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    elapsed: float = 0.0
    interrupted: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.error is None and self.sent == self.acknowledged

    def render(self, dry_run: bool) -> str:
        rate = self.sent / self.elapsed if self.elapsed else 0.0
        lines = [
            f"simulation {'dry run ' if dry_run else ''}summary (seed {self.seed}"
            f"{', interrupted' if self.interrupted else ''})",
            f"  sent          {self.sent:>12,}",
        ]
        if not dry_run:
            lines += [f"  acknowledged  {self.acknowledged:>12,}", f"  failed        {self.failed:>12,}"]
        lines += [f"  elapsed       {self.elapsed:>12.1f} s", f"  throughput    {rate:>12,.0f} events/s"]
        lines += [f"  {stream:<13} {count:>12,}" for stream, count in sorted(self.by_stream.items())]
        lines += [f"  fault {fault:<12}{count:>9,}" for fault, count in sorted(self.by_fault.items())]
        lines += [f"  delivery error {reason}: {count:,}" for reason, count in sorted(self.failures.items())]
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


class Pacer:
    """Holds sending back so neither the message rate nor the simulated clock runs ahead of its target."""

    def __init__(self, rate: float, speedup: float, start_ms: int) -> None:
        self.rate, self.speedup, self.start_ms = rate, speedup, start_ms
        self.started = time.monotonic()

    def wait(self, sent: int, event_ms: int, should_stop: Any) -> None:
        due = 0.0
        if self.rate > 0:
            due = sent / self.rate
        if self.speedup > 0:
            due = max(due, (event_ms - self.start_ms) / 1000 / self.speedup)
        while not should_stop() and (delay := due - (time.monotonic() - self.started)) > 0.002:
            time.sleep(min(delay, 0.2))


class _StopFlag:
    """True once SIGINT/SIGTERM asked to finish cleanly (see :func:`graceful_stop`) or ``duration`` is over."""

    def __init__(self, signalled: threading.Event, duration: float | None) -> None:
        self.deadline = time.monotonic() + duration if duration else None
        self.signalled = signalled

    def __call__(self) -> bool:
        return self.signalled.is_set() or (self.deadline is not None and time.monotonic() >= self.deadline)


def _progress(options: SimulationOptions) -> tqdm:
    return tqdm(
        total=options.max_events,
        unit="ev",
        unit_scale=True,
        disable=not options.progress,
        dynamic_ncols=True,
        file=sys.stderr,
        desc="simulate",
    )


def _city(options: SimulationOptions) -> tuple[City, FaultInjector]:
    return City(options.scenario, options.seed, options.start), FaultInjector(options.faults, options.seed)


def dry_run(settings: Settings, options: SimulationOptions, out: BinaryIO) -> Summary:
    """Write the messages as JSON lines instead of sending them; no broker needed."""
    city, injector = _city(options)
    summary = Summary(seed=options.seed)
    started = time.monotonic()
    with graceful_stop() as signalled, _progress(options) as bar:
        stop = _StopFlag(signalled, options.duration)
        for message in messages(city, injector, options.max_events, stop):
            out.write(envelope(message, settings.topics[message.stream]))
            _count(summary, message)
            if summary.sent % 1000 == 0:
                bar.update(1000)
        bar.update(summary.sent % 1000)
    summary.elapsed = time.monotonic() - started
    summary.interrupted = signalled.is_set()
    return summary


def _count(summary: Summary, message: Event) -> None:
    summary.sent += 1
    summary.by_stream[message.stream] += 1
    if message.fault:
        summary.by_fault[message.fault] += 1


def preflight(settings: Settings, timeout: float | None = None) -> None:
    """Fail fast, with what to do, when the broker is unreachable or a topic is missing."""
    if (problem := kafka_problem(settings, timeout)) is not None:
        raise type(problem)(
            f"{problem}. Start the local broker and its topics with `smartcity kafka start`, or check "
            "SMARTCITY_KAFKA_BOOTSTRAP_SERVERS and the SMARTCITY_*_TOPIC settings."
        )


class _Delivery:
    """Delivery-report bookkeeping: counts, the ledger, and when the broker last acknowledged anything."""

    def __init__(self, summary: Summary, ledger: IO[str] | None) -> None:
        self.summary, self.ledger = summary, ledger
        self.last_ack = time.monotonic()
        self.fatal: str | None = None

    def callback(self, message: Event) -> Callable[[KafkaError | None, Any], None]:
        """The delivery report handler of ``message``: a shared one unless the ledger needs the event."""
        if self.ledger is None:
            return self._counted
        return functools.partial(self._recorded, message)

    def _counted(self, err: KafkaError | None, _msg: Any) -> bool:
        if err is not None:
            self.summary.failed += 1
            self.summary.failures[err.name()] += 1
            return False
        self.summary.acknowledged += 1
        self.last_ack = time.monotonic()
        return True

    def _recorded(self, message: Event, err: KafkaError | None, msg: Any) -> None:
        if self._counted(err, msg):
            self.ledger.write(
                f"{message.event_id},{msg.topic()},{msg.partition()},{msg.offset()},"
                f"{'true' if message.valid else 'false'},{message.fault or ''}\n"
            )

    def on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal = f"fatal producer error: {err.str()}"
        elif err.code() == KafkaError._ALL_BROKERS_DOWN:
            log.warning("all brokers are down: %s", err.str())


def producer_config(settings: Settings, options: SimulationOptions, delivery: _Delivery) -> dict[str, Any]:
    return client_config(
        settings,
        **{
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 25,
            "batch.size": 1_000_000,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "message.timeout.ms": int(options.delivery_timeout * 1000),
            "error_cb": delivery.on_error,
        },
    )


def produce(settings: Settings, options: SimulationOptions) -> Summary:
    """Send the simulation to Kafka; the summary says what was acknowledged and what failed."""
    preflight(settings)
    city, injector = _city(options)
    summary = Summary(seed=options.seed)
    ledger = _open_ledger(options.ledger)
    delivery = _Delivery(summary, ledger)
    producer = Producer(producer_config(settings, options, delivery))
    pacer = Pacer(options.rate, options.speedup, city.clock_ms)
    paced = options.rate > 0 or options.speedup > 0
    topics = settings.topics
    started = time.monotonic()
    with graceful_stop() as signalled:
        stop = _StopFlag(signalled, options.duration)
        try:
            with _progress(options) as bar:
                for message in messages(city, injector, options.max_events, lambda: stop() or summary.error):
                    if paced:
                        pacer.wait(summary.sent, message.event_ms, stop)
                    send(producer, topics[message.stream], message.key, message.value, delivery.callback(message))
                    _count(summary, message)
                    if summary.sent % 1000 == 0:
                        producer.poll(0)
                        bar.update(1000)
                        bar.set_postfix(acked=summary.acknowledged, failed=summary.failed, refresh=False)
                        summary.error = _health(summary, delivery, options)
                remaining = producer.flush(options.delivery_timeout + 5)
                bar.update(summary.sent % 1000)
        finally:
            summary.elapsed = time.monotonic() - started
            summary.interrupted = signalled.is_set()
            if ledger is not None:
                ledger.close()
    if remaining:
        summary.failed += remaining
        summary.failures["not_delivered_before_exit"] += remaining
    return summary


def send(producer: Producer, topic: str, key: str, value: bytes, callback: Any = None) -> None:
    """Produce one message, serving delivery reports while the client's local queue is full."""
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=callback)
            return
        except BufferError:
            producer.poll(0.05)


def _health(summary: Summary, delivery: _Delivery, options: SimulationOptions) -> str | None:
    """Why the run must stop now, if it must: a fatal producer error, or a broker silent for too long."""
    if delivery.fatal:
        return delivery.fatal
    silent = time.monotonic() - delivery.last_ack
    if summary.failed and silent > options.delivery_timeout:
        return f"the broker acknowledged nothing for {silent:.0f}s and deliveries are failing; stopping"
    return None


def _open_ledger(path: Path | None) -> IO[str] | None:
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ledger = path.open("w", buffering=1 << 20)
    except OSError as exc:
        raise PlatformError(f"cannot write the ledger {path}: {exc.strerror}") from exc
    ledger.write(LEDGER_HEADER)
    return ledger
