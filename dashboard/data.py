"""What each dashboard page shows, as queries over the warehouse's gold tables (portable SQL, ``?`` params).

Pure functions of (warehouse URL, filters) → DataFrames, so the pages stay thin and the numbers are testable
without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from dashboard.warehouse import query

# Latest status per incident: a later lifecycle stage wins when two events share a timestamp.
_LATEST_INCIDENT_EVENTS = """
    SELECT * FROM (
        SELECT e.*, ROW_NUMBER() OVER (
            PARTITION BY incident_id
            ORDER BY event_time DESC,
                     CASE status WHEN 'resolved' THEN 3 WHEN 'dispatched' THEN 2 ELSE 1 END DESC
        ) AS position
        FROM gold.incident_events e
    ) latest WHERE position = 1
"""


@dataclass(frozen=True)
class Kpis:
    latest_hour: datetime | None
    data_as_of: datetime | None
    vehicles_reporting: int
    mean_speed_kmh: float | None
    open_incidents: int
    worst_aqi: int | None
    events_last_hour: int
    quarantined_last_day: int


def _scalar(frame: pd.DataFrame) -> object:
    value = frame.iat[0, 0] if len(frame) else None
    return None if value is None or pd.isna(value) else value


def last_day_start() -> datetime:
    """Start of the last 24 hours, the current hour included (naive UTC, as the warehouse stores hours)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None) - timedelta(hours=23)


def kpis(url: str) -> Kpis:
    """The overview tiles, for the newest hour in the warehouse (the quarantine tile: the last 24 hours)."""
    latest = _scalar(query(url, "SELECT max(hour_start) FROM gold.events_hourly"))
    as_of = _scalar(query(url, "SELECT max(last_event_time) FROM gold.events_hourly"))
    quarantined = _scalar(
        query(url, "SELECT sum(records) FROM gold.quarantine_hourly WHERE hour_start >= ?", [last_day_start()])
    )
    if latest is None:
        return Kpis(None, None, 0, None, 0, None, 0, int(quarantined or 0))
    fleet = query(
        url, "SELECT vehicles_reporting, mean_speed_kmh FROM gold.fleet_hourly WHERE hour_start = ?", [latest]
    )
    aqi = _scalar(query(url, "SELECT max(worst_aqi) FROM gold.weather_hourly WHERE hour_start = ?", [latest]))
    events = _scalar(query(url, "SELECT sum(events) FROM gold.events_hourly WHERE hour_start = ?", [latest]))
    open_incidents = _scalar(
        query(url, f"SELECT count(*) FROM ({_LATEST_INCIDENT_EVENTS}) l WHERE status <> 'resolved'")
    )
    return Kpis(
        latest_hour=pd.Timestamp(latest).to_pydatetime(),
        data_as_of=pd.Timestamp(as_of).to_pydatetime() if as_of is not None else None,
        vehicles_reporting=int(fleet["vehicles_reporting"].iloc[0]) if len(fleet) else 0,
        mean_speed_kmh=float(fleet["mean_speed_kmh"].iloc[0]) if len(fleet) else None,
        open_incidents=int(open_incidents or 0),
        worst_aqi=int(aqi) if aqi is not None else None,
        events_last_hour=int(events or 0),
        quarantined_last_day=int(quarantined or 0),
    )


def quarantine(url: str) -> pd.DataFrame:
    """Records quarantined in the last 24 hours per stream and reason, most frequent first."""
    sql = (
        "SELECT stream, reason, sum(records) AS records FROM gold.quarantine_hourly WHERE hour_start >= ? "
        "GROUP BY stream, reason ORDER BY records DESC, stream, reason"
    )
    return query(url, sql, [last_day_start()])


def hour_range(url: str) -> tuple[datetime, datetime] | None:
    frame = query(url, "SELECT min(hour_start) AS first, max(hour_start) AS last FROM gold.events_hourly")
    if not len(frame) or pd.isna(frame["first"].iloc[0]):
        return None
    return pd.Timestamp(frame["first"].iloc[0]).to_pydatetime(), pd.Timestamp(frame["last"].iloc[0]).to_pydatetime()


def zones(url: str) -> list[str]:
    frame = query(
        url, "SELECT DISTINCT zone FROM gold.traffic_hourly UNION SELECT DISTINCT zone FROM gold.weather_hourly"
    )
    return sorted(frame["zone"].dropna().tolist())


def vehicle_positions(url: str) -> pd.DataFrame:
    """Each vehicle's last known position."""
    return query(
        url,
        """
        SELECT vehicle_id, last_latitude AS latitude, last_longitude AS longitude, last_seen, last_zone AS zone,
               fuel_type, direction
        FROM (SELECT t.*, ROW_NUMBER() OVER (PARTITION BY vehicle_id ORDER BY last_seen DESC) AS position
              FROM gold.vehicle_trips t) latest
        WHERE position = 1
        ORDER BY vehicle_id
        """,
    )


def cameras(url: str) -> pd.DataFrame:
    """Cameras in their newest hour, with congestion."""
    return query(
        url,
        """
        SELECT camera_id, zone, latitude, longitude, peak_congestion_level, vehicles_seen, mean_speed_kmh, hour_start
        FROM gold.traffic_hourly WHERE hour_start = (SELECT max(hour_start) FROM gold.traffic_hourly)
        ORDER BY camera_id
        """,
    )


def stations(url: str) -> pd.DataFrame:
    """Weather stations in their newest hour, with air quality."""
    return query(
        url,
        """
        SELECT station_id, zone, latitude, longitude, worst_aqi, mean_temperature_c, max_precipitation_mm,
               last_condition, hour_start
        FROM gold.weather_hourly WHERE hour_start = (SELECT max(hour_start) FROM gold.weather_hourly)
        ORDER BY station_id
        """,
    )


def open_incidents(url: str) -> pd.DataFrame:
    return query(
        url,
        f"""
        SELECT incident_id, incident_type, severity, status, event_time, latitude, longitude, zone, description
        FROM ({_LATEST_INCIDENT_EVENTS}) l WHERE status <> 'resolved' ORDER BY severity DESC, event_time
        """,
    )


def _windowed(url: str, sql: str, start: datetime, end: datetime, selected_zones: list[str]) -> pd.DataFrame:
    """Run ``sql`` (with ``{window}`` where its WHERE clause goes) for hours in [start, end] and the chosen zones."""
    window = "hour_start >= ? AND hour_start <= ?"
    if selected_zones:
        window += f" AND zone IN ({', '.join('?' * len(selected_zones))})"
    return query(url, sql.format(window=window), [start, end, *selected_zones])


def traffic_trend(url: str, start: datetime, end: datetime, selected_zones: list[str]) -> pd.DataFrame:
    return _windowed(
        url,
        "SELECT hour_start, sum(vehicles_seen) AS vehicles_seen, avg(mean_speed_kmh) AS mean_speed_kmh "
        "FROM gold.traffic_hourly WHERE {window} GROUP BY hour_start ORDER BY hour_start",
        start, end, selected_zones,
    )  # fmt: skip


def weather_trend(url: str, start: datetime, end: datetime, selected_zones: list[str]) -> pd.DataFrame:
    return _windowed(
        url,
        "SELECT hour_start, avg(mean_temperature_c) AS mean_temperature_c, max(worst_aqi) AS worst_aqi, "
        "avg(mean_precipitation_mm) AS mean_precipitation_mm "
        "FROM gold.weather_hourly WHERE {window} GROUP BY hour_start ORDER BY hour_start",
        start, end, selected_zones,
    )  # fmt: skip


def incident_trend(url: str, start: datetime, end: datetime, selected_zones: list[str]) -> pd.DataFrame:
    return _windowed(
        url,
        "SELECT hour_start, incident_type, count(*) AS reported FROM gold.incident_events "
        "WHERE status = 'reported' AND {window} GROUP BY hour_start, incident_type ORDER BY hour_start, incident_type",
        start, end, selected_zones,
    )  # fmt: skip


def incidents(url: str, start: datetime, end: datetime) -> pd.DataFrame:
    """One row per incident reported in [start, end]: its lifecycle and time to resolve."""
    return query(
        url,
        f"""
        SELECT i.incident_id, any_type AS incident_type, max_severity AS severity, i.zone, reported_at, dispatched_at,
               resolved_at, l.status,
               CASE WHEN resolved_at IS NOT NULL THEN time_to_resolve_s / 60.0 END AS minutes_to_resolve
        FROM (
            SELECT incident_id, min(incident_type) AS any_type, max(severity) AS max_severity, min(zone) AS zone,
                   min(CASE WHEN status = 'reported' THEN event_time END) AS reported_at,
                   min(CASE WHEN status = 'dispatched' THEN event_time END) AS dispatched_at,
                   min(CASE WHEN status = 'resolved' THEN event_time END) AS resolved_at,
                   max(CASE WHEN status = 'resolved' THEN incident_duration_s END) AS time_to_resolve_s
            FROM gold.incident_events GROUP BY incident_id
        ) i JOIN ({_LATEST_INCIDENT_EVENTS}) l ON l.incident_id = i.incident_id
        WHERE reported_at >= ? AND reported_at < ?
        ORDER BY reported_at DESC
        """,
        [start, end],
    )


def vehicles(url: str) -> list[str]:
    return query(url, "SELECT DISTINCT vehicle_id FROM gold.vehicle_trips ORDER BY vehicle_id")["vehicle_id"].tolist()


def vehicle_trip(url: str, vehicle_id: str) -> pd.DataFrame:
    return query(
        url,
        """
        SELECT hour_start, trip_id, direction, first_seen, last_seen, distance_km, mean_speed_kmh, max_speed_kmh,
               start_latitude, start_longitude, last_latitude, last_longitude, last_zone, events
        FROM gold.vehicle_trips WHERE vehicle_id = ? ORDER BY first_seen
        """,
        [vehicle_id],
    )
