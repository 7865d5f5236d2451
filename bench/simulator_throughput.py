"""Benchmark: events/s one simulator process generates and gets acknowledged by the local broker.

In the same run it measures the client's ceiling: producing pre-serialised payloads of the same sizes with
the same producer settings, so the simulator's own cost shows as the gap between the two.

    .venv/bin/python -m bench.simulator_throughput --events 1000000 [--record]

Uses the configured broker (starting the local one if needed) and fresh topics named ``bench<id>_*``.
``--record`` replaces this benchmark's section in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime

from confluent_kafka import Producer

from bench.report import record_section
from simulator.city import City, Scenario
from simulator.faults import FaultInjector, FaultRates
from simulator.run import SimulationOptions, Summary, _Delivery, produce, producer_config, send
from simulator.stream import messages
from smartcity.kafka.admin import ensure_topics
from smartcity.kafka.broker import broker_service
from smartcity.settings import Settings, load_settings

START = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def bench_settings(base: Settings) -> Settings:
    prefix = f"bench{uuid.uuid4().hex[:6]}_"
    scoped = base.model_copy(update={f"{s}_topic": f"{prefix}{t}" for s, t in base.topics.items()})
    ensure_topics(scoped)
    return scoped


def simulator_rate(settings: Settings, options: SimulationOptions) -> tuple[float, int]:
    summary = produce(settings, options)
    assert summary.ok, summary.render(dry_run=False)
    return summary.sent / summary.elapsed, summary.sent


def generation_rate(options: SimulationOptions) -> float:
    city = City(options.scenario, options.seed, options.start)
    started = time.monotonic()
    count = sum(1 for _ in messages(city, FaultInjector(options.faults, options.seed), options.max_events, bool))
    return count / (time.monotonic() - started)


def ceiling_rate(settings: Settings, options: SimulationOptions, count: int) -> float:
    """Produce ``count`` pre-serialised simulator payloads (cycled from a sample) with the same settings."""
    city = City(options.scenario, options.seed, options.start)
    sample = [
        (settings.topics[m.stream], m.key, m.value)
        for m in messages(city, FaultInjector(FaultRates(), 1), 200_000, bool)
    ]
    delivery = _Delivery(Summary(seed=0), None)
    producer = Producer(producer_config(settings, options, delivery))
    started = time.monotonic()
    for index in range(count):
        send(producer, *sample[index % len(sample)])
        if index % 1000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return count / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events per measurement")
    parser.add_argument("--vehicles", type=int, default=1000, help="fleet size of the simulated city")
    parser.add_argument("--record", action="store_true", help="write the figures to docs/benchmarks.md")
    args = parser.parse_args()

    base = load_settings()
    broker_service(base).start()
    options = SimulationOptions(
        Scenario(vehicles=args.vehicles), seed=1, start=START, speedup=0, max_events=args.events, progress=False
    )
    generated = generation_rate(options)
    acknowledged, sent = simulator_rate(bench_settings(base), options)
    ceiling = ceiling_rate(bench_settings(base), options, sent)
    lines = [
        f"| events per run | {sent:,} (fleet of {args.vehicles} vehicles, unpaced) |",
        f"| simulator, generation only (no Kafka) | {generated:,.0f} events/s |",
        f"| simulator, generated and acknowledged by the broker | {acknowledged:,.0f} events/s |",
        f"| client ceiling: pre-serialised payloads, same producer settings | {ceiling:,.0f} events/s |",
        f"| simulator / ceiling | {acknowledged / ceiling:.0%} |",
        "| goal | ≥ 100,000 events/s and ≥ 50% of the ceiling |",
        f"| outcome | absolute goal {'met' if acknowledged >= 100_000 else 'NOT met'}; "
        f"ratio goal {'met' if acknowledged >= ceiling / 2 else 'NOT met'} |",
    ]
    print("\n".join(lines))
    if args.record:
        record_section(
            "Simulator throughput",
            f"python -m bench.simulator_throughput --events {args.events} --vehicles {args.vehicles}",
            lines,
        )


if __name__ == "__main__":
    main()
