"""The asset keys of every step, the group each belongs to, and who owns them.

One place, so a step names its upstream without importing that step's module, and `smartcity status` can tell
an asset's group from its key without building the definitions.
"""

from __future__ import annotations

import dagster as dg

OWNERS = ["team:data-platform"]

INGESTION, CATALOG, PROCESSED, GOLD, WAREHOUSE = "ingestion", "catalog", "processed", "gold", "warehouse"
COST = "cost"
"""Reports on the lake (not a step of the flow, not partitioned)."""
STEPS = (CATALOG, PROCESSED, GOLD, WAREHOUSE)
"""The groups Dagster computes, in flow order (ingestion is landed outside Dagster)."""
GROUP_OF_PREFIX = {"kafka": INGESTION, "raw": INGESTION, "quarantine": INGESTION,
                   **{step: step for step in STEPS}, COST: COST}  # fmt: skip


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
