"""The city's zones: the corridor's main junctions, London (Marble Arch) to Birmingham along the A40/M40.

The simulator drives its fleet along the polyline through these points; the processed tables assign every
position to its nearest zone, so dashboards and aggregates can group by a name people recognise.
"""

from __future__ import annotations

from typing import NamedTuple


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
