"""The stream of messages a simulation sends: city events, with faults applied and reordered as planned.

Shared by the Kafka producer and the dry run, so both send exactly the same messages for the same seed.
"""

from __future__ import annotations

import base64
import heapq
from collections.abc import Callable, Iterator

import orjson

from simulator.city import City, Event
from simulator.faults import DUPLICATE, OUT_OF_ORDER, FaultInjector


def envelope(event: Event, topic: str) -> bytes:
    """A dry-run JSON line: the payload as text, or base64 when it is not valid UTF-8."""
    record: dict[str, object] = {
        "topic": topic,
        "key": event.key,
        "event_id": event.event_id,
        "fault": event.fault,
        "valid": event.valid,
    }
    try:
        record["value"] = event.value.decode("utf-8")
    except UnicodeDecodeError:
        record["value_base64"] = base64.b64encode(event.value).decode()
    return orjson.dumps(record) + b"\n"


def messages(
    city: City, injector: FaultInjector, max_events: int | None, should_stop: Callable[[], bool]
) -> Iterator[Event]:
    """Generate up to ``max_events`` city events (duplicates come on top), then finish open incidents.

    Out-of-order events and duplicate re-sends are held back a few events; all are released before the end.
    """
    held: list[tuple[int, int, Event]] = []  # (release after this many generated events, seq, event)
    generated = 0
    while not should_stop() and (max_events is None or generated < max_events):
        for event in city.step():
            if max_events is not None and generated >= max_events:
                break
            generated += 1
            fault = injector.choose()
            if fault is None:
                yield event
            elif fault == OUT_OF_ORDER:
                heapq.heappush(held, (generated + injector.delay(fault), generated, injector.apply(fault, event)))
            elif fault == DUPLICATE:
                yield event
                heapq.heappush(held, (generated + injector.delay(fault), generated, injector.apply(fault, event)))
            else:
                yield injector.apply(fault, event)
            while held and held[0][0] <= generated:
                yield heapq.heappop(held)[2]
    yield from city.drain()
    while held:
        yield heapq.heappop(held)[2]
