"""The corridor's zones as the map draws them: each area holds exactly the positions nearest to its junction, by
the distance processing assigns zones with."""

from __future__ import annotations

import numpy as np

from smartcity.zones import ZONES, road, squared_distance, zone_areas


def inside(point: tuple[float, float], polygon: list[list[float]]) -> bool:
    """Ray casting: whether (x, y) lies inside the polygon."""
    x, y = point
    crossings = 0
    for (x1, y1), (x2, y2) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            crossings += 1
    return crossings % 2 == 1


def test_each_area_holds_the_positions_nearest_to_its_junction() -> None:
    areas = zone_areas()
    assert list(areas) == [zone.name for zone in ZONES]
    for zone in ZONES:  # a junction lies in its own area and in no other
        assert [name for name, area in areas.items() if inside((zone.longitude, zone.latitude), area)] == [zone.name]
    rng = np.random.default_rng(7)
    lats, lons = rng.uniform(51.45, 52.55, 3000), rng.uniform(-1.95, -0.1, 3000)
    distances = np.sort(np.stack([squared_distance(lats, lons, zone) for zone in ZONES]), axis=0)
    nearest = np.argmin(np.stack([squared_distance(lats, lons, zone) for zone in ZONES]), axis=0)
    clear = np.sqrt(distances[1]) - np.sqrt(distances[0]) > 0.03  # not within the grid's resolution of a boundary
    assert clear.sum() > 800  # enough positions away from the boundaries to judge
    for lat, lon, index in zip(lats[clear], lons[clear], nearest[clear], strict=True):
        holding = [name for name, area in areas.items() if inside((lon, lat), area)]
        assert holding in ([ZONES[index].name], []), (lat, lon, holding)  # [] past the margin of the outer areas


def test_the_road_runs_through_every_junction_in_order() -> None:
    assert road() == [[zone.longitude, zone.latitude] for zone in ZONES] and len(road()) == len(ZONES)
