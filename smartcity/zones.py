"""The city's zones: the corridor's main junctions, London (Marble Arch) to Birmingham along the A40/M40.

The simulator drives its fleet along the polyline through these points; the processed tables assign every
position to its nearest zone, so dashboards and aggregates can group by a name people recognise. The map draws
the same geometry (the road, the junctions, each zone's area) so that it reads without online base tiles.
"""

from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple, TypeVar

import numpy as np

Coordinate = TypeVar("Coordinate")
"""A float, a numpy array or a Spark column: the distance is the same arithmetic on each."""


class Zone(NamedTuple):
    name: str
    latitude: float
    longitude: float


ZONES = (
    Zone("Marble Arch", 51.5136, -0.1586),
    Zone("Westway / Acton", 51.5163, -0.2660),
    Zone("Northolt", 51.5420, -0.3940),
    Zone("Denham (M40 J1)", 51.5640, -0.4950),
    Zone("Beaconsfield (J2)", 51.6100, -0.6420),
    Zone("High Wycombe (J4)", 51.6190, -0.7480),
    Zone("Stokenchurch (J5)", 51.6760, -0.9410),
    Zone("Wheatley (J8)", 51.7350, -1.0620),
    Zone("Bicester (J9)", 51.8850, -1.1580),
    Zone("Banbury (J11)", 52.0640, -1.3200),
    Zone("Gaydon (J12)", 52.1950, -1.4700),
    Zone("Warwick (J15)", 52.2720, -1.5660),
    Zone("Hockley Heath (J16)", 52.3450, -1.7250),
    Zone("Solihull", 52.4110, -1.7780),
    Zone("Birmingham", 52.4800, -1.8990),
)


def squared_distance(latitude: Coordinate, longitude: Coordinate, zone: Zone) -> Coordinate:
    """Equirectangular squared distance (degrees²) to ``zone``, the measure "nearest zone" uses everywhere."""
    return (latitude - zone.latitude) ** 2 + ((longitude - zone.longitude) * math.cos(math.radians(zone.latitude))) ** 2


def road() -> list[list[float]]:
    """The corridor's road as [longitude, latitude] points, junction to junction (the simulator's route)."""
    return [[zone.longitude, zone.latitude] for zone in ZONES]


@cache
def zone_areas(step: float = 0.01, margin: float = 0.2) -> dict[str, list[list[float]]]:
    """Each zone's area as a polygon of [longitude, latitude] points: the convex hull of the points of a grid of
    ``step`` degrees (within ``margin`` of the junctions) nearer to it than to any other, by
    :func:`squared_distance`, so the map's boundaries are the ones processing assigns positions by."""
    lats = np.arange(min(z.latitude for z in ZONES) - margin, max(z.latitude for z in ZONES) + margin, step)
    lons = np.arange(min(z.longitude for z in ZONES) - margin, max(z.longitude for z in ZONES) + margin, step)
    lat, lon = (grid.ravel() for grid in np.meshgrid(lats, lons))
    nearest = np.argmin(np.stack([squared_distance(lat, lon, zone) for zone in ZONES]), axis=0)
    return {zone.name: _hull(lon[nearest == index], lat[nearest == index]) for index, zone in enumerate(ZONES)}


def _hull(xs: np.ndarray, ys: np.ndarray) -> list[list[float]]:
    """The convex hull of the points, counter-clockwise (Andrew's monotone chain)."""
    points = sorted(set(zip(xs.round(6).tolist(), ys.round(6).tolist(), strict=True)))

    def half(ordered: list[tuple[float, float]]) -> list[tuple[float, float]]:
        chain: list[tuple[float, float]] = []
        for point in ordered:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], point) <= 0:
                chain.pop()
            chain.append(point)
        return chain[:-1]

    return [list(point) for point in half(points) + half(points[::-1])]


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
