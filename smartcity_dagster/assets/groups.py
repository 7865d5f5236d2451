"""The asset groups, and the group of an asset key's first part, without importing Dagster: `smartcity status`
tells an asset's group from its key in a second, without building the definitions."""

INGESTION, CATALOG, PROCESSED, GOLD, WAREHOUSE = "ingestion", "catalog", "processed", "gold", "warehouse"
COST = "cost"
"""Reports on the lake (not a step of the flow, not partitioned)."""
STEPS = (CATALOG, PROCESSED, GOLD, WAREHOUSE)
"""The groups Dagster computes, in flow order (ingestion is landed outside Dagster)."""
GROUP_OF_PREFIX = {"kafka": INGESTION, "raw": INGESTION, "quarantine": INGESTION,
                   **{step: step for step in STEPS}, COST: COST}  # fmt: skip
