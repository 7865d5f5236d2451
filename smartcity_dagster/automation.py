"""When the gold and warehouse assets run by themselves: as soon as their upstream hour changed.

``AutomationCondition.eager()`` looks only at the newest time partition, but late events re-process older
hours (the lake sensor requests them), and their aggregates must follow. So this condition is eager over a
lookback window of recent hours instead.
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
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(f"hourly eager (last {lookback})")
