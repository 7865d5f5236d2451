"""The simulated city: a fleet on the corridor, GPS units, traffic cameras, weather stations and incidents.

:class:`City` advances a simulated clock one tick at a time and returns the events each device emits in that
tick, already serialised to JSON following :mod:`smartcity.contracts`. Everything random comes from one seed,
so the same seed and start time give the same events, identifiers included. Devices interact: vehicles slow
down in traffic, near cities, at rush hour and around open accidents; cameras count the vehicles actually
near them; weather stations see air quality worsen with the traffic around them.
"""

from __future__ import annotations

import functools
import heapq
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
import orjson

from simulator.geo import CORRIDOR, Route, haversine_km_array
from smartcity.contracts import SCHEMA_VERSION

MAKES = (
    ("Toyota", "Corolla"),
    ("Toyota", "Prius"),
    ("Ford", "Focus"),
    ("Ford", "Transit"),
    ("Volkswagen", "Golf"),
    ("BMW", "3 Series"),
    ("Tesla", "Model 3"),
    ("Nissan", "Leaf"),
    ("Vauxhall", "Corsa"),
    ("Kia", "Niro"),
)
FUEL_WEIGHTS = {"petrol": 0.45, "diesel": 0.25, "hybrid": 0.18, "electric": 0.12}
INCIDENT_TYPES = {"accident": 0.45, "medical": 0.30, "police": 0.15, "fire": 0.10}
SEVERITY_WEIGHTS = (0.30, 0.30, 0.22, 0.12, 0.06)
URBAN_KM = 12.0  # the first and last kilometres of the corridor are city streets
MOTORWAY_KMH, URBAN_KMH = 112.0, 45.0
MAX_KMH = 130.0
ACCIDENT_SLOWDOWN_KM = 2.0
BRAKING_MS2 = 1.5  # planned deceleration towards the terminus
MAX_BRAKING_MS2 = 3.0


class Event(NamedTuple):
    """One serialised event, ready for Kafka: ``key`` is the device id, the message key.

    ``fault`` names the fault injected into it, if any; ``valid`` is False when its payload is malformed.
    """

    stream: str
    key: str
    event_id: str
    event_ms: int
    value: bytes
    fault: str | None = None
    valid: bool = True


@dataclass(frozen=True)
class Scenario:
    """What the city contains and how often each device reports (in simulated seconds)."""

    vehicles: int = 50
    cameras: int = 12
    weather_stations: int = 6
    dispatch_centres: int = 3
    tick_seconds: int = 1
    vehicle_interval: int = 1
    camera_interval: int = 30
    weather_interval: int = 60
    incidents_per_hour: float = 12.0
    camera_range_km: float = 0.5
    route: Route = CORRIDOR

    def __post_init__(self) -> None:
        if self.vehicles < 1 or self.cameras < 1 or self.weather_stations < 1 or self.dispatch_centres < 1:
            raise ValueError("a scenario needs at least one vehicle, camera, weather station and dispatch centre")


@functools.lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def iso_ms(ms: int) -> str:
    """Epoch milliseconds → '2026-01-31T12:00:00.123Z' (the date part is cached: events come in bursts)."""
    return f"{_iso_second(ms // 1000)}{ms % 1000:03d}Z"


class _Ids:
    """Seeded identifiers: the same seed gives the same UUIDs."""

    def __init__(self, rng: random.Random) -> None:
        self._bits = rng.getrandbits

    def uuid(self) -> str:
        value = (self._bits(128) & ~(0xF << 76) | (0x4 << 76)) & ~(0x3 << 62) | (0x2 << 62)
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class _Incident:
    incident_id: str
    incident_type: str
    severity: int
    latitude: float
    longitude: float
    route_km: float
    reported_ms: int
    dispatched_ms: int
    resolved_ms: int
    centre: int


class City:
    """Advance with :meth:`step`; :meth:`drain` finishes the lifecycles of incidents still open."""

    def __init__(self, scenario: Scenario, seed: int, start: datetime) -> None:
        self.scenario = scenario
        self.rng = np.random.default_rng(seed)
        self.ids = _Ids(random.Random(seed))
        self.route = scenario.route
        self.clock_ms = int(start.astimezone(UTC).timestamp()) * 1000
        self.tick = 0
        self._init_fleet()
        self._init_cameras()
        self._init_weather()
        self.open_incidents: dict[str, _Incident] = {}
        self._lifecycle: list[tuple[int, int, str, str]] = []  # (due ms, seq, incident id, status)
        self._lifecycle_seq = 0
        self.last_fleet: tuple[list[float], list[float], list[float]] | None = None

    # ------------------------------------------------------------------ set-up
    def _init_fleet(self) -> None:
        n, rng = self.scenario.vehicles, self.rng
        self.vehicle_ids = [f"vehicle-{i:05d}" for i in range(n)]
        self.gps_ids = [f"gps-{i:05d}" for i in range(n)]
        picks = rng.integers(0, len(MAKES), n)
        self.make_model = [MAKES[i] for i in picks]
        self.year = rng.integers(2008, 2027, n).tolist()
        self.fuel = rng.choice(list(FUEL_WEIGHTS), n, p=list(FUEL_WEIGHTS.values())).tolist()
        self.position_km = rng.uniform(1.0, self.route.length_km - 1.0, n)
        self.direction = rng.choice([1, -1], n)
        self.speed_kmh = rng.uniform(20, 90, n)
        self.driver_factor = rng.uniform(0.88, 1.08, n)
        self.odometer_km = np.zeros(n)
        self.dwell = np.zeros(n, dtype=int)
        self.trip_ids = [self.ids.uuid() for _ in range(n)]
        self.device_offset_ms = rng.integers(0, 1000, n).tolist()
        self.gps_accuracy = rng.uniform(3, 12, n)

    def _init_cameras(self) -> None:
        count = self.scenario.cameras
        km = self.route.length_km * (np.arange(count) + 0.5) / count
        lat, lon, _ = self.route.positions(km)
        self.camera_ids = [f"camera-{i:03d}" for i in range(count)]
        self.camera_lat, self.camera_lon = np.round(lat, 6), np.round(lon, 6)

    def _init_weather(self) -> None:
        count = self.scenario.weather_stations
        km = self.route.length_km * (np.arange(count) + 0.5) / count
        lat, lon, _ = self.route.positions(km)
        self.station_ids = [f"weather-{i:03d}" for i in range(count)]
        self.station_lat = np.round(lat + self.rng.normal(0, 0.01, count), 6)
        self.station_lon = np.round(lon + self.rng.normal(0, 0.01, count), 6)
        self.temp_anomaly = self.rng.normal(0, 1.5, count)
        self.rain_mmh = np.zeros(count)
        self.wind_kmh = self.rng.uniform(5, 25, count)
        self.aqi_noise = self.rng.normal(0, 5, count)

    # ------------------------------------------------------------------ stepping
    def step(self) -> list[Event]:
        """Advance one tick and return the events emitted during it (vehicles, GPS, cameras, weather, incidents)."""
        dt = self.scenario.tick_seconds
        self.tick += 1
        self.clock_ms += dt * 1000
        self._start_incidents(dt)
        self._move_fleet(dt)
        events: list[Event] = []
        if self.tick % self.scenario.vehicle_interval == 0:
            events += self._fleet_events()
        if self.tick % self.scenario.camera_interval == 0:
            events += self._camera_events()
        if self.tick % self.scenario.weather_interval == 0:
            events += self._weather_events()
        events += self._due_lifecycle_events(self.clock_ms)
        return events

    def drain(self) -> list[Event]:
        """Emit the remaining lifecycle events of open incidents, at their scheduled times, so every one resolves."""
        return self._due_lifecycle_events(None)

    def _target_speed(self) -> np.ndarray:
        km, length = self.position_km, self.route.length_km
        urban = (km < URBAN_KM) | (km > length - URBAN_KM)
        target = np.where(urban, URBAN_KMH, MOTORWAY_KMH) * self.driver_factor
        hour = datetime.fromtimestamp(self.clock_ms / 1000, tz=UTC).hour
        if hour in (7, 8, 16, 17):
            target *= 0.6
        target /= 1 + 0.15 * self._nearby_same_direction(1.0)
        for incident in self.open_incidents.values():
            if incident.incident_type == "accident":
                target = np.where(
                    np.abs(km - incident.route_km) < ACCIDENT_SLOWDOWN_KM, np.minimum(target, 25.0), target
                )
        return target

    def _nearby_same_direction(self, radius_km: float) -> np.ndarray:
        """For each vehicle, how many others travel its way within ``radius_km`` (a density measure)."""
        counts = np.zeros(len(self.position_km))
        for heading in (1, -1):
            idx = np.flatnonzero(self.direction == heading)
            ordered = np.sort(self.position_km[idx])
            lo = np.searchsorted(ordered, self.position_km[idx] - radius_km)
            hi = np.searchsorted(ordered, self.position_km[idx] + radius_km, side="right")
            counts[idx] = hi - lo - 1
        return counts

    def _move_fleet(self, dt: int) -> None:
        n = len(self.position_km)
        accel = np.clip(
            0.25 * (self._target_speed() - self.speed_kmh) / 3.6 + self.rng.normal(0, 0.3, n), -MAX_BRAKING_MS2, 1.5
        )
        moving = self.dwell == 0
        to_end_m = np.where(self.direction > 0, self.route.length_km - self.position_km, self.position_km) * 1000
        floor_kmh = np.maximum(self.speed_kmh - MAX_BRAKING_MS2 * dt * 3.6, 0)
        cap_kmh = np.maximum(np.sqrt(2 * BRAKING_MS2 * to_end_m) * 3.6, floor_kmh)  # brake for the terminus
        speed = np.minimum(np.clip(self.speed_kmh + accel * dt * 3.6, 0, MAX_KMH), cap_kmh)
        self.speed_kmh = np.where(moving, speed, floor_kmh)  # a stopping vehicle still brakes at most this hard
        travelled = self.speed_kmh * dt / 3600
        self.odometer_km += travelled
        self.position_km += self.direction * travelled
        self.dwell = np.maximum(self.dwell - dt, 0)
        at_end = self.route.length_km
        arrived = np.flatnonzero(
            ((self.position_km <= 0) & (self.direction < 0)) | ((self.position_km >= at_end) & (self.direction > 0))
        )
        for i in arrived.tolist():  # turn around after a stop of 1-5 minutes, starting a new trip
            self.position_km[i] = min(max(self.position_km[i], 0.0), self.route.length_km)
            self.direction[i] = -self.direction[i]
            self.dwell[i] = int(self.rng.integers(60, 300))
            self.trip_ids[i] = self.ids.uuid()

    # ------------------------------------------------------------------ events
    def _event(self, stream: str, device: str, event_ms: int, fields: dict, event_id: str | None = None) -> Event:
        event_id = event_id or self.ids.uuid()
        record = {
            "event_id": event_id,
            "device_id": device,
            "event_time": iso_ms(event_ms),
            "schema_version": SCHEMA_VERSION,
            **fields,
        }
        return Event(stream, device, event_id, event_ms, orjson.dumps(record))

    def _fleet_positions(self) -> tuple[list[float], list[float], list[float], list[float]]:
        lat, lon, bearing = self.route.positions(self.position_km)
        heading = np.where(self.direction > 0, bearing, (bearing + 180) % 360)
        return (
            np.round(lat, 6).tolist(),
            np.round(lon, 6).tolist(),
            np.round(heading, 1).tolist(),
            np.round(self.speed_kmh, 2).tolist(),
        )

    def _fleet_events(self) -> list[Event]:
        lat, lon, heading, speed = self._fleet_positions()
        self.last_fleet = (lat, lon, speed)
        odometer = np.round(self.odometer_km, 3).tolist()
        n = len(lat)
        noise_m = self.rng.normal(0, 1, (n, 2)) * self.gps_accuracy[:, None] / 2
        gps_lat = np.round(np.array(lat) + noise_m[:, 0] / 111_320, 6).tolist()
        gps_lon = np.round(np.array(lon) + noise_m[:, 1] / (111_320 * np.cos(np.radians(lat))), 6).tolist()
        gps_speed = np.round(np.clip(np.array(speed) + self.rng.normal(0, 0.5, n), 0, None), 2).tolist()
        accuracy = np.round(self.gps_accuracy, 1).tolist()
        satellites = self.rng.integers(6, 15, n).tolist()
        base = self.clock_ms
        events = []
        for i in range(n):
            at = base + self.device_offset_ms[i]
            make, model = self.make_model[i]
            events.append(
                self._event(
                    "vehicle",
                    self.vehicle_ids[i],
                    at,
                    {
                        "latitude": lat[i],
                        "longitude": lon[i],
                        "speed_kmh": speed[i],
                        "heading_deg": heading[i],
                        "make": make,
                        "model": model,
                        "year": self.year[i],
                        "fuel_type": self.fuel[i],
                        "odometer_km": odometer[i],
                        "trip_id": self.trip_ids[i],
                        "direction": "outbound" if self.direction[i] > 0 else "inbound",
                    },
                )
            )
            events.append(
                self._event(
                    "gps",
                    self.gps_ids[i],
                    at,
                    {
                        "latitude": gps_lat[i],
                        "longitude": gps_lon[i],
                        "speed_kmh": gps_speed[i],
                        "heading_deg": heading[i],
                        "vehicle_id": self.vehicle_ids[i],
                        "accuracy_m": accuracy[i],
                        "satellites": satellites[i],
                    },
                )
            )
        return events

    def _camera_events(self) -> list[Event]:
        lat, lon, speed = (np.array(values) for values in self.last_fleet_or_now())
        hour = datetime.fromtimestamp(self.clock_ms / 1000, tz=UTC).strftime("%Y/%m/%d/%H")
        events = []
        for c, camera in enumerate(self.camera_ids):
            near = haversine_km_array(float(self.camera_lat[c]), float(self.camera_lon[c]), lat, lon)
            near = near <= self.scenario.camera_range_km
            count = int(near.sum())
            mean_speed = round(float(speed[near].mean()), 2) if count else None
            fields = {
                "latitude": float(self.camera_lat[c]),
                "longitude": float(self.camera_lon[c]),
                "camera_id": camera,
                "vehicle_count": count,
                "congestion_level": congestion_level(mean_speed),
            }
            if mean_speed is not None:
                fields["mean_speed_kmh"] = mean_speed
            event_id = self.ids.uuid()
            fields["snapshot_key"] = f"snapshots/{camera}/{hour}/{event_id}.jpg"
            events.append(self._event("traffic", camera, self.clock_ms, fields, event_id))
        return events

    def last_fleet_or_now(self) -> tuple[list[float], list[float], list[float]]:
        """The fleet's positions as last reported (so camera counts agree with the vehicle events)."""
        if self.last_fleet is None:
            lat, lon, _, speed = self._fleet_positions()
            self.last_fleet = (lat, lon, speed)
        return self.last_fleet

    def _weather_events(self) -> list[Event]:
        when = datetime.fromtimestamp(self.clock_ms / 1000, tz=UTC)
        count = len(self.station_ids)
        rng = self.rng
        self.temp_anomaly = np.clip(0.97 * self.temp_anomaly + rng.normal(0, 0.25, count), -8, 8)
        self.rain_mmh = np.clip(0.92 * self.rain_mmh + rng.normal(-0.08, 0.35, count), 0, 40)
        self.wind_kmh = np.clip(0.95 * self.wind_kmh + 0.05 * 18 + rng.normal(0, 1.5, count), 0, 120)
        self.aqi_noise = np.clip(0.9 * self.aqi_noise + rng.normal(0, 3, count), -30, 60)
        seasonal = 11 + 7 * math.cos(2 * math.pi * (when.timetuple().tm_yday - 200) / 365)
        diurnal = 4.5 * math.sin(2 * math.pi * (when.hour + when.minute / 60 - 9) / 24)
        temperature = np.clip(seasonal + diurnal + self.temp_anomaly, -50, 55)
        humidity = np.clip(
            70 - 1.5 * (temperature - 11) + 12 * (self.rain_mmh > 0.1) + rng.normal(0, 3, count), 15, 100
        )
        lat, lon, _ = (np.array(values) for values in self.last_fleet_or_now())
        traffic = np.array(
            [
                (haversine_km_array(float(a), float(b), lat, lon) <= 3.0).sum()
                for a, b in zip(self.station_lat, self.station_lon, strict=True)
            ]
        )
        aqi = np.clip(25 + 4 * traffic + self.aqi_noise - 3 * self.rain_mmh, 0, 500).round().astype(int)
        events = []
        for s, station in enumerate(self.station_ids):
            rain = round(float(self.rain_mmh[s]), 2)
            events.append(
                self._event(
                    "weather",
                    station,
                    self.clock_ms + 250,
                    {
                        "latitude": float(self.station_lat[s]),
                        "longitude": float(self.station_lon[s]),
                        "temperature_c": round(float(temperature[s]), 2),
                        "precipitation_mm": rain,
                        "wind_speed_kmh": round(float(self.wind_kmh[s]), 2),
                        "humidity_pct": round(float(humidity[s]), 1),
                        "aqi": int(aqi[s]),
                        "condition": weather_condition(rain, float(humidity[s])),
                    },
                )
            )
        return events

    # ------------------------------------------------------------------ incidents
    def _start_incidents(self, dt: int) -> None:
        arrivals = int(self.rng.poisson(self.scenario.incidents_per_hour * dt / 3600))
        for _ in range(arrivals):
            kind = str(self.rng.choice(list(INCIDENT_TYPES), p=list(INCIDENT_TYPES.values())))
            km = float(self.rng.uniform(0, self.route.length_km))
            lat, lon, _ = self.route.positions(np.array([km]))
            offset = 0.0 if kind == "accident" else 0.004
            reported = self.clock_ms + int(self.rng.integers(0, 1000))
            dispatched = reported + int((30 + self.rng.exponential(240)) * 1000)
            resolved = dispatched + int(min(300 + self.rng.exponential(1500), 3 * 3600) * 1000)
            incident = _Incident(
                incident_id=f"INC-{self.ids.uuid()[:13].upper()}",
                incident_type=kind,
                severity=int(self.rng.choice(5, p=SEVERITY_WEIGHTS)) + 1,
                latitude=round(float(lat[0]) + float(self.rng.normal(0, offset)), 6),
                longitude=round(float(lon[0]) + float(self.rng.normal(0, offset)), 6),
                route_km=km,
                reported_ms=reported,
                dispatched_ms=dispatched,
                resolved_ms=resolved,
                centre=int(self.rng.integers(0, self.scenario.dispatch_centres)),
            )
            self.open_incidents[incident.incident_id] = incident
            for due, status in ((reported, "reported"), (dispatched, "dispatched"), (resolved, "resolved")):
                self._lifecycle_seq += 1
                heapq.heappush(self._lifecycle, (due, self._lifecycle_seq, incident.incident_id, status))

    def _due_lifecycle_events(self, until_ms: int | None) -> list[Event]:
        events = []
        while self._lifecycle and (until_ms is None or self._lifecycle[0][0] <= until_ms):
            due, _, incident_id, status = heapq.heappop(self._lifecycle)
            incident = self.open_incidents[incident_id]
            if status == "resolved":
                del self.open_incidents[incident_id]
            events.append(
                self._event(
                    "emergency",
                    f"dispatch-{incident.centre:02d}",
                    due,
                    {
                        "latitude": incident.latitude,
                        "longitude": incident.longitude,
                        "incident_id": incident_id,
                        "incident_type": incident.incident_type,
                        "severity": incident.severity,
                        "status": status,
                        "description": f"{incident.incident_type} (severity {incident.severity}) {status}",
                    },
                )
            )
        return events


def congestion_level(mean_speed_kmh: float | None) -> str:
    """Congestion from the mean speed of the vehicles a camera sees; no vehicles means free flow."""
    if mean_speed_kmh is None or mean_speed_kmh >= 80:
        return "free"
    if mean_speed_kmh >= 50:
        return "moderate"
    if mean_speed_kmh >= 25:
        return "heavy"
    return "severe"


def weather_condition(rain_mmh: float, humidity_pct: float) -> str:
    if rain_mmh >= 4:
        return "heavy_rain"
    if rain_mmh >= 0.2:
        return "rain"
    return "cloudy" if humidity_pct >= 80 else "clear"


def start_of(value: str | None) -> datetime:
    """Parse ``--start`` (ISO 8601; naive means UTC) or default to now, truncated to the second."""
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)
