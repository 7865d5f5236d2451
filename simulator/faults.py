"""Fault injection for the tests downstream: malformed payloads, duplicates, late and out-of-order events.

Faults are placed by stratified sampling: a kind with rate r fires once at a seeded random position inside
each run of 1/r generated events. After N events it has fired floor(N·r) or one more times (a collision with
another kind delays it by an event), so tests can assert the counts exactly; faults still land on random
devices, and the same seed places them at the same events.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from simulator.city import Event, iso_ms
from smartcity.contracts import CONTRACTS, MAX_PAYLOAD_BYTES

MALFORMED = ("invalid_json", "wrong_type", "missing_field", "out_of_range", "invalid_utf8", "oversized")
DUPLICATE, LATE, OUT_OF_ORDER = "duplicate", "late", "out_of_order"
FAULT_KINDS = (*MALFORMED, DUPLICATE, LATE, OUT_OF_ORDER)
LATE_RANGE_S = (5 * 60, 3 * 3600)
OUT_OF_ORDER_DELAY = (5, 200)  # events sent in between
DUPLICATE_DELAY = (0, 500)


@dataclass(frozen=True)
class FaultRates:
    """Rate per fault kind, as a fraction of generated events; at most one fault per event."""

    rates: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s) {', '.join(sorted(unknown))}; known: {', '.join(FAULT_KINDS)}")
        for kind, rate in self.rates.items():
            if not 0 <= rate <= 1:
                raise ValueError(f"the {kind} rate must be between 0 and 1, got {rate}")
        if sum(self.rates.values()) > 1:
            raise ValueError(f"fault rates add up to {sum(self.rates.values()):g}; at most 1 fault per event")

    @classmethod
    def build(cls, malformed: float = 0.0, **per_kind: float) -> FaultRates:
        """``malformed`` is spread evenly over the six malformed kinds, on top of any per-kind rate."""
        rates = {
            kind: per_kind.get(kind, 0.0) + (malformed / len(MALFORMED) if kind in MALFORMED else 0.0)
            for kind in FAULT_KINDS
        }
        return cls({kind: rate for kind, rate in rates.items() if rate > 0})

    @property
    def any(self) -> bool:
        return bool(self.rates)


class FaultInjector:
    """Decides the fault of each generated event and applies the malformed and late ones."""

    def __init__(self, rates: FaultRates, seed: int) -> None:
        self.rates = dict(rates.rates)
        self.rng = random.Random(seed ^ 0x5EED_FA17)
        self.index = 0
        self.interval = dict.fromkeys(self.rates, 0)
        self.next_at = {kind: self._draw(kind) for kind in self.rates}
        self.earliest = min(self.next_at.values(), default=float("inf"))

    def _draw(self, kind: str) -> float:
        """A random position inside the kind's next interval of 1/rate events (stratified sampling)."""
        span = 1 / self.rates[kind]
        return (self.interval[kind] + self.rng.random()) * span

    def choose(self) -> str | None:
        """The fault for the next event, or None; never more than one per event."""
        self.index += 1
        if self.index <= self.earliest:
            return None
        kind = min(self.next_at, key=self.next_at.__getitem__)  # the most overdue fires; others wait a turn
        self.interval[kind] += 1
        self.next_at[kind] = self._draw(kind)
        self.earliest = min(self.next_at.values())
        return kind

    def delay(self, kind: str) -> int:
        low, high = OUT_OF_ORDER_DELAY if kind == OUT_OF_ORDER else DUPLICATE_DELAY
        return self.rng.randint(low, high)

    def apply(self, kind: str, event: Event) -> Event:
        """The event marked with its fault: malformed payloads rewritten, late ones moved into the past."""
        if kind in MALFORMED:
            return event._replace(value=self._malformed(kind, event), fault=kind, valid=False)
        if kind == LATE:
            shifted = event.event_ms - self.rng.randint(*LATE_RANGE_S) * 1000
            record = orjson.loads(event.value) | {"event_time": iso_ms(shifted)}
            return event._replace(event_ms=shifted, value=orjson.dumps(record), fault=kind)
        return event._replace(fault=kind)

    def _malformed(self, kind: str, event: Event) -> bytes:
        contract = CONTRACTS[event.stream]
        record = orjson.loads(event.value)
        if kind == "invalid_json":
            return event.value[: self.rng.randint(1, len(event.value) - 2)]
        if kind == "wrong_type":  # the original project's bug: coordinates as one string
            record["latitude"] = f"[{record['latitude']}, {record['longitude']}]"
        elif kind == "missing_field":
            required = [f.name for f in contract.fields if f.required and f.name != "event_id"]
            del record[self.rng.choice(required)]
        elif kind == "out_of_range":
            bounded = [f for f in contract.fields if f.maximum is not None and f.name != "schema_version"]
            target = self.rng.choice(bounded)
            record[target.name] = target.maximum * 10 + 1 if target.type == "double" else int(target.maximum) * 10 + 1
        elif kind == "invalid_utf8":
            text = orjson.dumps(record)
            device = event.key.encode()
            return text.replace(device, device + b"\xff\xfe", 1)
        elif kind == "oversized":
            record["description"] = "x" * (MAX_PAYLOAD_BYTES + 1024)
        else:
            raise ValueError(f"not a malformed kind: {kind}")
        return orjson.dumps(record)
