"""When the gold and warehouse assets run by themselves: as soon as their upstream hour changed.

``AutomationCondition.eager()`` looks only at the newest time partition, but late events re-process older
hours (the lake sensor requests them), and their aggregates must follow. So this condition is eager over a
lookback window of recent hours instead. Unlike ``eager()`` it does not wait for upstream runs in progress:
with a live stream the lake sensor keeps a processing run going most of the time, and the gold hour would
starve. It cannot read a half-written hour either: gold and processing share the ``lake_catalog`` pool, so the
gold run queues until processing is done, and the newer processed hour then requests gold again.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg


def hourly_eager(lookback: timedelta) -> dg.AutomationCondition:
    """Run a partition of the last ``lookback`` when an upstream partition updated or it went missing."""
    return (
        dg.AutomationCondition.in_latest_time_window(lookback)
        & (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(f"hourly eager (last {lookback})")
