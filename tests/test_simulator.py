"""The city simulator offline: determinism, contracts, physical plausibility, and exact fault injection."""

from __future__ import annotations

import io
import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime

import numpy as np
import pytest

from simulator.city import City, Event, Scenario, congestion_level, start_of
from simulator.faults import FAULT_KINDS, MALFORMED, FaultInjector, FaultRates
from simulator.geo import CORRIDOR, haversine_km
from simulator.run import SimulationOptions, dry_run
from simulator.stream import messages
from smartcity.contracts import CONTRACTS, MAX_PAYLOAD_BYTES, validate
from smartcity.settings import Settings

START = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)


def run_messages(
    seed: int = 11, max_events: int = 20_000, rates: FaultRates | None = None, **scenario: object
) -> list[Event]:
    city = City(Scenario(**scenario), seed, START)
    return list(messages(city, FaultInjector(rates or FaultRates(), seed), max_events, lambda: False))


def dry_run_bytes(settings: Settings, seed: int) -> bytes:
    out = io.BytesIO()
    options = SimulationOptions(
        Scenario(vehicles=20, incidents_per_hour=600),
        seed=seed,
        start=START,
        speedup=0,
        max_events=5_000,
        faults=FaultRates.build(malformed=0.06, duplicate=0.01, late=0.01),
        progress=False,
    )
    dry_run(settings, options, out)
    return out.getvalue()


def test_same_seed_same_bytes_identifiers_included(settings: Settings) -> None:
    first, second = dry_run_bytes(settings, 5), dry_run_bytes(settings, 5)
    assert first == second
    assert first != dry_run_bytes(settings, 6)
    lines = [json.loads(line) for line in first.splitlines()]
    assert {line["topic"] for line in lines} == set(settings.topics.values())


def test_every_generated_event_follows_its_contract() -> None:
    sent = run_messages(max_events=30_000, vehicles=40, incidents_per_hour=120)
    assert {m.stream for m in sent} == set(CONTRACTS)
    ids = set()
    for message in sent:
        record = json.loads(message.value)
        assert validate(CONTRACTS[message.stream], record) == [], record
        assert record["device_id"] == message.key
        assert isinstance(record["latitude"], float) and isinstance(record["longitude"], float)
        ids.add(record["event_id"])
    assert len(ids) == len(sent)


@pytest.fixture(scope="module")
def two_hours() -> list[dict]:
    """Two simulated hours (through the morning rush) of a 30-vehicle city, decoded."""
    city = City(Scenario(vehicles=30, incidents_per_hour=30), 3, START)
    events = []
    for _ in range(2 * 3600):
        events += city.step()
    events += city.drain()
    return [{"stream": e.stream, "event_ms": e.event_ms, **json.loads(e.value)} for e in events]


def by_stream(events: list[dict], stream: str) -> list[dict]:
    return [e for e in events if e["stream"] == stream]


def test_positions_follow_the_corridor(two_hours: list[dict]) -> None:
    vehicles = by_stream(two_hours, "vehicle")[::97]
    gps = by_stream(two_hours, "gps")[::97]
    assert max(CORRIDOR.distance_to_route_km(e["latitude"], e["longitude"]) for e in vehicles) < 0.05
    assert (
        max(CORRIDOR.distance_to_route_km(e["latitude"], e["longitude"]) - 4 * e["accuracy_m"] / 1000 for e in gps)
        < 0.05
    )


def test_vehicles_move_plausibly(two_hours: list[dict]) -> None:
    tracks = defaultdict(list)
    for event in by_stream(two_hours, "vehicle"):
        tracks[event["device_id"]].append(event)
    for track in tracks.values():
        speeds = np.array([e["speed_kmh"] for e in track])
        assert speeds.min() >= 0 and speeds.max() <= 130
        assert np.abs(np.diff(speeds)).max() <= 3.0 * 3.6 + 1e-6  # at most 3 m/s² of braking per second
        steps = [
            haversine_km(a["latitude"], a["longitude"], b["latitude"], b["longitude"])
            for a, b in itertools.pairwise(track)
        ]
        assert max(steps) <= 130 / 3600 + 0.01  # never jumps further than its speed allows
        odometer = [e["odometer_km"] for e in track]
        assert odometer == sorted(odometer)
    mean_speed = np.mean([e["speed_kmh"] for e in by_stream(two_hours, "vehicle")])
    assert 30 < mean_speed < 120


def test_event_times_are_monotonic_per_device(two_hours: list[dict]) -> None:
    last: dict[str, int] = {}
    for event in sorted((e for e in two_hours if e["stream"] != "emergency"), key=lambda e: e["event_ms"]):
        assert last.get(event["device_id"], -1) < event["event_ms"]
        last[event["device_id"]] = event["event_ms"]
    for stream in ("vehicle", "gps", "traffic", "weather"):
        per_device = defaultdict(list)
        for event in by_stream(two_hours, stream):  # in the order they were emitted
            per_device[event["device_id"]].append(event["event_ms"])
        assert all(times == sorted(set(times)) for times in per_device.values())


def test_camera_counts_agree_with_fleet_positions(two_hours: list[dict]) -> None:
    fleet_at = defaultdict(list)
    for event in by_stream(two_hours, "vehicle"):
        fleet_at[event["event_ms"] // 1000].append(event)
    cameras = by_stream(two_hours, "traffic")
    assert len(cameras) == 12 * (2 * 3600 // 30)
    busy = 0
    for camera in cameras:
        here = (camera["latitude"], camera["longitude"])
        near = [
            v for v in fleet_at[camera["event_ms"] // 1000] if haversine_km(*here, v["latitude"], v["longitude"]) <= 0.5
        ]
        assert camera["vehicle_count"] == len(near)
        if near:
            busy += 1
            assert camera["mean_speed_kmh"] == pytest.approx(np.mean([v["speed_kmh"] for v in near]), abs=0.006)
        assert camera["congestion_level"] == congestion_level(camera.get("mean_speed_kmh"))
    assert busy > 0


def test_weather_evolves_smoothly_within_physical_ranges(two_hours: list[dict]) -> None:
    stations = defaultdict(list)
    for event in by_stream(two_hours, "weather"):
        stations[event["device_id"]].append(event)
    assert len(stations) == 6
    for readings in stations.values():
        temperature = np.array([r["temperature_c"] for r in readings])
        assert temperature.min() > -25 and temperature.max() < 40
        assert np.abs(np.diff(temperature)).max() < 1.5  # a bounded random walk, not independent draws
        assert all(0 <= r["aqi"] <= 500 and 0 <= r["humidity_pct"] <= 100 for r in readings)
        assert len({r["temperature_c"] for r in readings}) > 10


def test_every_incident_ends_resolved_in_lifecycle_order(two_hours: list[dict]) -> None:
    incidents = defaultdict(list)
    for event in by_stream(two_hours, "emergency"):
        incidents[event["incident_id"]].append(event)
    assert len(incidents) > 20
    for events in incidents.values():
        assert [e["status"] for e in events] == ["reported", "dispatched", "resolved"]
        assert events[0]["event_ms"] < events[1]["event_ms"] < events[2]["event_ms"]
        assert len({(e["incident_type"], e["severity"], e["latitude"]) for e in events}) == 1


def test_emergencies_arrive_as_a_poisson_process() -> None:
    city = City(Scenario(vehicles=1, incidents_per_hour=60), 9, START)
    reported = 0
    for _ in range(10 * 3600):
        reported += sum(1 for e in city.step() if e.stream == "emergency" and b'"reported"' in e.value)
    assert 600 - 4 * 600**0.5 < reported < 600 + 4 * 600**0.5  # mean 600, four standard deviations


def test_start_time_parsing() -> None:
    assert start_of("2026-11-27T08:00:00Z") == datetime(2026, 11, 27, 8, tzinfo=UTC)
    assert start_of("2026-11-27T09:00:00+01:00") == datetime(2026, 11, 27, 8, tzinfo=UTC)
    assert start_of(None).tzinfo is UTC


# ----------------------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_fault_flag_gives_exactly_its_kind_and_rate(kind: str) -> None:
    generated, rate = 20_000, 0.013
    sent = run_messages(max_events=generated, rates=FaultRates({kind: rate}))
    faulted = [m for m in sent if m.fault is not None]
    assert {m.fault for m in faulted} == {kind}
    assert int(generated * rate) <= len(faulted) <= int(generated * rate) + 1
    assert all(m.valid == (kind not in MALFORMED) for m in faulted)
    assert all(m.valid for m in sent if m.fault is None)


def test_all_faults_together_keep_their_rates() -> None:
    generated = 50_000
    rates = FaultRates.build(malformed=0.06, duplicate=0.01, late=0.02, out_of_order=0.01)
    sent = run_messages(max_events=generated, rates=rates)
    counts = {kind: sum(1 for m in sent if m.fault == kind) for kind in FAULT_KINDS}
    for kind, rate in rates.rates.items():
        assert abs(counts[kind] - generated * rate) <= 2, (kind, counts[kind])
    faulted_devices = {m.key for m in sent if m.fault}
    assert len(faulted_devices) > 50  # spread over the city, not one unlucky device


def check_malformed(message: Event) -> None:
    contract = CONTRACTS[message.stream]
    if message.fault == "invalid_json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(message.value)
    elif message.fault == "invalid_utf8":
        with pytest.raises(UnicodeDecodeError):
            message.value.decode("utf-8")
    elif message.fault == "oversized":
        assert len(message.value) > MAX_PAYLOAD_BYTES
    else:
        reasons = validate(contract, json.loads(message.value))
        expected = {
            "wrong_type": "latitude: expected a number",
            "missing_field": "required field is missing",
            "out_of_range": "above the maximum",
        }[message.fault]
        assert any(expected in reason for reason in reasons), reasons


def test_malformed_payloads_are_malformed_as_labelled() -> None:
    sent = run_messages(max_events=20_000, rates=FaultRates.build(malformed=0.3))
    malformed = [m for m in sent if m.fault in MALFORMED]
    assert {m.fault for m in malformed} == set(MALFORMED)
    for message in malformed:
        check_malformed(message)
        assert message.event_id.encode() in message.value or message.fault == "invalid_json"


def test_duplicates_late_and_out_of_order_are_what_they_claim() -> None:
    sent = run_messages(max_events=20_000, rates=FaultRates.build(duplicate=0.02, late=0.02, out_of_order=0.02))
    first_seen: dict[str, bytes] = {}
    newest_ms, overtaken = 0, 0
    for message in sent:
        if message.fault == "duplicate":
            assert first_seen[message.event_id] == message.value  # the same event, sent again
        else:
            assert message.event_id not in first_seen
            first_seen[message.event_id] = message.value
        if message.fault == "late":
            assert 5 * 60_000 <= newest_ms - message.event_ms <= 3 * 3600_000 + 2_000
        if message.fault == "out_of_order":
            assert message.event_ms <= newest_ms
            overtaken += message.event_ms < newest_ms
        assert validate(CONTRACTS[message.stream], json.loads(message.value)) == []
        newest_ms = max(newest_ms, message.event_ms)
    assert overtaken > 0.9 * sum(1 for m in sent if m.fault == "out_of_order")


def test_fault_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="add up to"):
        FaultRates.build(malformed=0.8, duplicate=0.3)
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultRates({"gremlins": 0.1})
