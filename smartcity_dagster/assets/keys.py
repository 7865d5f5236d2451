"""The asset keys of every step, the group each belongs to, and who owns them.

One place, so a step names its upstream without importing that step's module.
"""

from __future__ import annotations

import dagster as dg

from smartcity_dagster.assets.groups import CATALOG, COST, GOLD, GROUP_OF_PREFIX, PROCESSED, WAREHOUSE

OWNERS = ["team:data-platform"]


def group_of(key: dg.AssetKey) -> str:
    """The asset group of ``key``: the first part of every key names its step."""
    return GROUP_OF_PREFIX[key.path[0]]


def kafka_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey(["kafka", stream])


def raw_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", stream])


def quarantine_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey(["quarantine", stream])


LANDED_KEYS = {"raw": raw_key, "quarantine": quarantine_key}
"""The zones the stream lands: zone → the asset key of one of its tables."""


def catalog_key(zone: str, table: str) -> dg.AssetKey:
    return dg.AssetKey([CATALOG, zone, table])


def processed_key(stream: str) -> dg.AssetKey:
    return dg.AssetKey([PROCESSED, stream])


def gold_key(model: str) -> dg.AssetKey:
    return dg.AssetKey([GOLD, model])


def warehouse_key(model: str) -> dg.AssetKey:
    return dg.AssetKey([WAREHOUSE, model])


LAKE_COST_KEY = dg.AssetKey([COST, "lake"])
