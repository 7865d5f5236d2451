"""The data contracts of the five event streams: the one place that defines their fields.

The simulator builds events from these specs, the Spark job derives its read schemas from them, and the catalog
and dbt sources are generated from them, so a renamed field fails loudly everywhere instead of turning into
silent nulls downstream. :func:`validate` is the reference validator: it returns the reasons a decoded event
breaks its contract (an empty list when it is valid).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

SCHEMA_VERSION = 1
# Larger payloads are quarantined as oversized; Kafka's own 1 MB message limit stays well above this.
MAX_PAYLOAD_BYTES = 64 * 1024

FieldType = Literal["string", "uuid", "timestamp", "double", "integer"]
# Shared with the Spark validation (Java regex syntax is the same for these).
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
_UUID = re.compile(UUID_PATTERN)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
# Why a record is quarantined, checked in this order (the first that applies is recorded).
QUARANTINE_REASONS = (
    "oversized",
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "invalid_format",
    "out_of_range",
    "unknown_field",
    "implausible_time",
)


@dataclass(frozen=True)
class Field:
    """One field of an event: its JSON type, whether it must be present, and its allowed values."""

    name: str
    type: FieldType
    description: str
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Contract:
    """The schema of one stream (and so of one Kafka topic)."""

    stream: str
    default_topic: str
    description: str
    fields: tuple[Field, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)


COMMON_FIELDS = (
    Field("event_id", "uuid", "unique id of the event (UUID); duplicates share it"),
    Field("device_id", "string", "id of the device that emitted the event; the Kafka message key"),
    Field("event_time", "timestamp", "when the event happened, UTC, millisecond precision (ISO 8601, 'Z')"),
    Field("schema_version", "integer", "version of this contract", minimum=1, maximum=SCHEMA_VERSION),
)
_POSITION = (
    Field("latitude", "double", "WGS84 latitude in degrees", minimum=-90, maximum=90),
    Field("longitude", "double", "WGS84 longitude in degrees", minimum=-180, maximum=180),
)
_MOTION = (
    Field("speed_kmh", "double", "speed in km/h", minimum=0, maximum=250),
    Field("heading_deg", "double", "direction of travel, degrees clockwise from north", minimum=0, maximum=360),
)

VEHICLE = Contract(
    "vehicle",
    "vehicle_data",
    "Telemetry of a fleet vehicle driving the corridor.",
    (
        *COMMON_FIELDS,
        *_POSITION,
        *_MOTION,
        Field("make", "string", "manufacturer"),
        Field("model", "string", "model name"),
        Field("year", "integer", "model year", minimum=1990, maximum=2030),
        Field("fuel_type", "string", "fuel type", allowed=("petrol", "diesel", "hybrid", "electric")),
        Field("odometer_km", "double", "distance driven since the simulation began, km", minimum=0, maximum=1e7),
        Field("trip_id", "string", "id of the current trip (one direction along the corridor)"),
        Field("direction", "string", "direction along the corridor", allowed=("outbound", "inbound")),
    ),
)
GPS = Contract(
    "gps",
    "gps_data",
    "Position fix of a GPS unit mounted in a fleet vehicle.",
    (
        *COMMON_FIELDS,
        *_POSITION,
        *_MOTION,
        Field("vehicle_id", "string", "device_id of the vehicle carrying the unit"),
        Field("accuracy_m", "double", "horizontal accuracy of the fix, metres", minimum=0, maximum=500),
        Field("satellites", "integer", "satellites used for the fix", minimum=0, maximum=64),
    ),
)
TRAFFIC = Contract(
    "traffic",
    "traffic_data",
    "Periodic report of a traffic camera: vehicles seen near it and how fast they move.",
    (
        *COMMON_FIELDS,
        *_POSITION,
        Field("camera_id", "string", "camera name (equals device_id)"),
        Field(
            "vehicle_count", "integer", "vehicles within the camera's range at report time", minimum=0, maximum=10_000
        ),
        Field(
            "mean_speed_kmh",
            "double",
            "mean speed of those vehicles; absent when none",
            required=False,
            minimum=0,
            maximum=250,
        ),
        Field(
            "congestion_level",
            "string",
            "congestion derived from speed and density",
            allowed=("free", "moderate", "heavy", "severe"),
        ),
        Field("snapshot_key", "string", "object key of the camera snapshot in the lake"),
    ),
)
WEATHER = Contract(
    "weather",
    "weather_data",
    "Reading of a weather station along the corridor.",
    (
        *COMMON_FIELDS,
        *_POSITION,
        Field("temperature_c", "double", "air temperature, °C", minimum=-50, maximum=55),
        Field("precipitation_mm", "double", "precipitation over the last hour, mm", minimum=0, maximum=300),
        Field("wind_speed_kmh", "double", "wind speed, km/h", minimum=0, maximum=250),
        Field("humidity_pct", "double", "relative humidity, %", minimum=0, maximum=100),
        Field("aqi", "integer", "air-quality index (0 good … 500 hazardous)", minimum=0, maximum=500),
        Field("condition", "string", "weather condition", allowed=("clear", "cloudy", "rain", "heavy_rain")),
    ),
)
EMERGENCY = Contract(
    "emergency",
    "emergency_data",
    "Lifecycle event of an emergency incident: reported, dispatched, resolved (sharing one incident_id).",
    (
        *COMMON_FIELDS,
        *_POSITION,
        Field("incident_id", "string", "id shared by all events of one incident"),
        Field("incident_type", "string", "type of incident", allowed=("accident", "fire", "medical", "police")),
        Field("severity", "integer", "1 (minor) … 5 (critical)", minimum=1, maximum=5),
        Field("status", "string", "lifecycle stage", allowed=("reported", "dispatched", "resolved")),
        Field("description", "string", "short human description", required=False),
    ),
)

CONTRACTS: dict[str, Contract] = {c.stream: c for c in (VEHICLE, GPS, TRAFFIC, WEATHER, EMERGENCY)}


def _type_error(field: Field, value: Any) -> str | None:
    if field.type in ("string", "uuid", "timestamp"):
        if not isinstance(value, str):
            return f"{field.name}: expected a string, got {type(value).__name__}"
        if field.type == "uuid" and not _UUID.match(value):
            return f"{field.name}: not a lowercase UUID"
        if field.type == "timestamp":
            if not _TIMESTAMP.match(value):
                return f"{field.name}: not a UTC timestamp like 2026-01-31T12:00:00.000Z"
            try:
                datetime.fromisoformat(value)
            except ValueError:
                return f"{field.name}: not a valid date/time"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{field.name}: expected a number, got {type(value).__name__}"
    if field.type == "integer" and not float(value).is_integer():
        return f"{field.name}: expected an integer, got {value}"
    if not math.isfinite(value):
        return f"{field.name}: not a finite number"
    return None


def _value_error(field: Field, value: Any) -> str | None:
    if field.minimum is not None and value < field.minimum:
        return f"{field.name}: {value} is below the minimum {field.minimum:g}"
    if field.maximum is not None and value > field.maximum:
        return f"{field.name}: {value} is above the maximum {field.maximum:g}"
    if field.allowed is not None and value not in field.allowed:
        return f"{field.name}: {value!r} is not one of {', '.join(field.allowed)}"
    return None


def validate(contract: Contract, event: Any) -> list[str]:
    """Why ``event`` (a decoded JSON value) breaks ``contract``; empty when it is valid."""
    if not isinstance(event, dict):
        return [f"expected a JSON object, got {type(event).__name__}"]
    reasons = []
    for field in contract.fields:
        value = event.get(field.name)
        if value is None:
            if field.required:
                reasons.append(f"{field.name}: required field is missing")
            continue
        problem = _type_error(field, value) or _value_error(field, value)
        if problem:
            reasons.append(problem)
    unknown = sorted(set(event) - set(contract.field_names))
    if unknown:
        reasons.append(f"unknown field(s): {', '.join(unknown)}")
    return reasons
