"""The corridor's road as a polyline: positions along it by distance, and distances on the sphere."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from smartcity.zones import ZONES

EARTH_RADIUS_KM = 6371.0088

LONDON_BIRMINGHAM = tuple((zone.latitude, zone.longitude) for zone in ZONES)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def haversine_km_array(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Great-circle distances in km from one point to many."""
    p1, p2 = np.radians(lat), np.radians(lats)
    dp, dl = p2 - p1, np.radians(lons - lon)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360


@dataclass(frozen=True)
class Route:
    """A polyline with cumulative distances, for vectorised position look-ups by km from its start."""

    waypoints: tuple[tuple[float, float], ...]
    cumulative_km: np.ndarray = field(init=False, repr=False, compare=False)
    leg_bearings: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pairs = list(zip(self.waypoints, self.waypoints[1:], strict=False))
        object.__setattr__(
            self, "cumulative_km", np.concatenate([[0.0], np.cumsum([haversine_km(*a, *b) for a, b in pairs])])
        )
        object.__setattr__(self, "leg_bearings", np.array([bearing_deg(*a, *b) for a, b in pairs]))

    @property
    def length_km(self) -> float:
        return float(self.cumulative_km[-1])

    def positions(self, km: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Latitude, longitude and outbound bearing at each distance ``km`` along the route."""
        km = np.clip(km, 0.0, self.length_km)
        leg = np.clip(np.searchsorted(self.cumulative_km, km, side="right") - 1, 0, len(self.waypoints) - 2)
        start, end = self.cumulative_km[leg], self.cumulative_km[leg + 1]
        fraction = (km - start) / np.maximum(end - start, 1e-9)
        points = np.asarray(self.waypoints)
        lat = points[leg, 0] + fraction * (points[leg + 1, 0] - points[leg, 0])
        lon = points[leg, 1] + fraction * (points[leg + 1, 1] - points[leg, 1])
        return lat, lon, self.leg_bearings[leg]

    def distance_to_route_km(self, lat: float, lon: float, samples_per_km: int = 20) -> float:
        """Approximate distance from a point to the polyline (sampled), for plausibility checks."""
        lats, lons, _ = self.positions(np.linspace(0.0, self.length_km, int(self.length_km * samples_per_km) + 1))
        return float(haversine_km_array(lat, lon, lats, lons).min())


CORRIDOR = Route(LONDON_BIRMINGHAM)
