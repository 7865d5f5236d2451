"""What the lake costs on S3 and Athena: bytes per zone and storage class now, objects per partition (the
small-file count), and the monthly bill the observed volume settles at under the lifecycle rules.

Prices are AWS's public list prices in one dated table (:data:`PRICES`): re-check them against the pricing
pages when the date is old, and expect other regions to differ. GB and TB are binary (2^30, 2^40 bytes), as
AWS bills them.

The steady state is a projection, not a measurement: it takes the bytes the lake holds per hour of data in
each zone, assumes every hour of a month looks like the hours seen, and applies the lifecycle of
:mod:`smartcity_aws.stack` (raw compacted to one object per hour and table, then tiered; every zone expired after
the retention). Athena is charged per query with a 10 MB minimum, and each hour's gold build runs one query
per gold table reading that hour's processed data; ad-hoc and dashboard queries come on top.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date

from smartcity import aws_rules
from smartcity.lake_layout import GOLD, PROCESSED, QUARANTINE, RAW, VERSIONS
from smartcity.object_store import InventoryItem
from smartcity.settings import Settings

GB, TB = 2**30, 2**40
HOURS_PER_MONTH = 730  # AWS's billing month
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
SMALL_OBJECT = 128 * 2**10
"""S3's small-object line: STANDARD_IA and GLACIER_IR bill at least this much per object, and lifecycle rules
do not transition smaller objects at all."""


@dataclass(frozen=True)
class PriceList:
    """Public list prices in USD for one region, and the day they were read."""

    as_of: date
    region: str
    storage_gb_month: Mapping[str, float]
    """Per GB-month, by storage class (first pricing tier)."""
    transition_per_1000: Mapping[str, float]
    """Lifecycle transition requests into a class, per 1,000 objects."""
    athena_per_tb: float
    athena_minimum_bytes: int
    glue_free_objects: int
    glue_per_100k_objects: float
    kms_key_month: float


PRICES = PriceList(
    as_of=date(2026, 12, 1),
    region="us-east-1",
    storage_gb_month={
        "STANDARD": 0.023,
        "INTELLIGENT_TIERING": 0.023,
        "STANDARD_IA": 0.0125,
        "ONEZONE_IA": 0.01,
        "GLACIER_IR": 0.004,
        "GLACIER": 0.0036,
        "DEEP_ARCHIVE": 0.00099,
    },
    transition_per_1000={
        "STANDARD_IA": 0.01,
        "ONEZONE_IA": 0.01,
        "GLACIER_IR": 0.02,
        "GLACIER": 0.03,
        "DEEP_ARCHIVE": 0.05,
    },
    athena_per_tb=5.0,
    athena_minimum_bytes=10 * 2**20,
    glue_free_objects=1_000_000,
    glue_per_100k_objects=1.0,
    kms_key_month=1.0,
)
MINIMUM_BILLED_SIZE = {"STANDARD_IA": SMALL_OBJECT, "ONEZONE_IA": SMALL_OBJECT, "GLACIER_IR": SMALL_OBJECT}


def storage_cost(size: int, storage_class: str, prices: PriceList = PRICES) -> float:
    """One month of one object in ``storage_class``, at least the class's minimum billed size."""
    billed = max(size, MINIMUM_BILLED_SIZE.get(storage_class, 0))
    return billed / GB * prices.storage_gb_month.get(storage_class, prices.storage_gb_month["STANDARD"])


@dataclass(frozen=True)
class ZoneUsage:
    """The objects of one zone in one storage class, and their month at list price."""

    zone: str
    storage_class: str
    objects: int
    bytes: int
    monthly_usd: float


@dataclass(frozen=True)
class PartitionFiles:
    """Objects per partition in one zone: many small objects cost requests and slow every scan."""

    zone: str
    partitions: int
    objects: int
    median_objects: float
    max_objects: int
    busiest: str
    small_objects: int
    """Objects under 128 KB."""


@dataclass(frozen=True)
class LineItem:
    item: str
    quantity: float
    unit: str
    monthly_usd: float


@dataclass(frozen=True)
class CostReport:
    prices: PriceList
    usage: list[ZoneUsage]
    partitions: list[PartitionFiles]
    steady_state: list[LineItem]
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(usage.bytes for usage in self.usage)

    @property
    def monthly_now_usd(self) -> float:
        return sum(usage.monthly_usd for usage in self.usage)

    @property
    def steady_state_usd(self) -> float:
        return sum(line.monthly_usd for line in self.steady_state)

    def as_dict(self) -> dict[str, object]:
        report = asdict(self)
        report["prices"]["as_of"] = self.prices.as_of.isoformat()
        report["totals"] = {"bytes": self.bytes, "monthly_now_usd": self.monthly_now_usd,
                            "steady_state_usd": self.steady_state_usd}  # fmt: skip
        return report


@dataclass
class _Table:
    """What the inventory holds of one table: objects and bytes per partition (an hour directory)."""

    partitions: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    @property
    def bytes_per_hour(self) -> float:
        return sum(map(sum, self.partitions.values())) / len(self.partitions) if self.partitions else 0.0


def _zone_of(key: str) -> str:
    zone = key.split("/", 1)[0]
    return zone if zone in (RAW, QUARANTINE, PROCESSED, GOLD) else "state and staging"


def _partition_of(key: str) -> str | None:
    """``<zone>/<table>/<date>=…/<hour>=…`` of a data file (also of a version's, kept beside its hour), else None."""
    parts = key.split("/")
    if len(parts) > 2 and parts[2] == VERSIONS:
        del parts[2]
    if len(parts) >= 5 and "=" in parts[2] and "=" in parts[3] and key.endswith(".parquet"):
        return "/".join(parts[:4])
    return None


def lake_report(inventory: Iterable[InventoryItem], settings: Settings, prices: PriceList = PRICES) -> CostReport:
    """The cost report of a lake from its inventory (keys relative to the lake root)."""
    usage: dict[tuple[str, str], list[int]] = defaultdict(list)
    tables: dict[str, dict[str, _Table]] = defaultdict(lambda: defaultdict(_Table))
    cost_by_class: dict[tuple[str, str], float] = defaultdict(float)
    for item in inventory:
        zone = _zone_of(item.key)
        usage[zone, item.storage_class].append(item.size)
        cost_by_class[zone, item.storage_class] += storage_cost(item.size, item.storage_class, prices)
        if (partition := _partition_of(item.key)) is not None:
            tables[zone][item.key.split("/")[1]].partitions[partition].append(item.size)
    zones = [ZoneUsage(zone, storage_class, len(sizes), sum(sizes), cost_by_class[zone, storage_class])
             for (zone, storage_class), sizes in sorted(usage.items())]  # fmt: skip
    return CostReport(
        prices=prices,
        usage=zones,
        partitions=[_partition_files(zone, tables[zone]) for zone in sorted(tables)],
        steady_state=steady_state(tables, settings, prices),
        notes=[
            f"list prices for {prices.region} read on {prices.as_of}; other regions differ",
            "steady state: every hour of a month like the hours in the lake, lifecycle and retention applied",
            "Athena: one query per gold table per hour over that hour's processed data; ad-hoc queries extra",
        ],
    )


def _partition_files(zone: str, tables: Mapping[str, _Table]) -> PartitionFiles:
    counts = {partition: sizes for table in tables.values() for partition, sizes in table.partitions.items()}
    busiest = max(counts, key=lambda partition: len(counts[partition]))
    return PartitionFiles(
        zone=zone,
        partitions=len(counts),
        objects=sum(map(len, counts.values())),
        median_objects=statistics.median(map(len, counts.values())),
        max_objects=len(counts[busiest]),
        busiest=busiest,
        small_objects=sum(size < SMALL_OBJECT for sizes in counts.values() for size in sizes),
    )


def steady_state(tables: Mapping[str, Mapping[str, _Table]], settings: Settings, prices: PriceList) -> list[LineItem]:
    """The monthly bill once the lake holds a full retention of hours like the ones seen."""
    retention = settings.retention_days
    lines = [_raw_tiers(tables.get(RAW, {}), retention, prices)]
    lines.append(_standard_for(QUARANTINE, tables, min(retention, aws_rules.QUARANTINE_EXPIRY_DAYS), prices))
    lines += [_standard_for(zone, tables, retention, prices) for zone in (PROCESSED, GOLD)]
    lines.append(_transitions(tables.get(RAW, {}), retention, prices))
    lines.append(_athena(tables, prices))
    lines.append(_glue(tables, retention, prices))
    if settings.s3_kms_key_id:
        lines.append(LineItem("KMS customer managed key", 1, "key", prices.kms_key_month))
    return lines


def _standard_for(zone: str, tables: Mapping[str, Mapping[str, _Table]], days: float, prices: PriceList) -> LineItem:
    stored = sum(table.bytes_per_hour for table in tables.get(zone, {}).values()) * 24 * days
    return LineItem(f"{zone}: STANDARD for {days:g} days", stored / GB, "GB-month",
                    storage_cost(int(stored), "STANDARD", prices))  # fmt: skip


def raw_tiers(retention: int) -> dict[str, int]:
    """Days a raw hour spends in each storage class before it expires (the lifecycle of the raw prefix)."""
    to_ia, to_glacier_ir = aws_rules.RAW_TO_STANDARD_IA_DAYS, aws_rules.RAW_TO_GLACIER_IR_DAYS
    return {"STANDARD": min(retention, to_ia),
            "STANDARD_IA": max(0, min(retention, to_glacier_ir) - to_ia),
            "GLACIER_IR": max(0, retention - to_glacier_ir)}  # fmt: skip


def _raw_tiers(tables: Mapping[str, _Table], retention: int, prices: PriceList) -> LineItem:
    """Raw hours are compacted to one object per table; objects of 128 KB or more move to STANDARD_IA after 30
    days and GLACIER_IR after 90, smaller ones stay STANDARD until they expire."""
    usd, stored = 0.0, 0.0
    for table in tables.values():
        hour = table.bytes_per_hour
        for storage_class, days in raw_tiers(retention).items():
            kept = storage_class if hour >= SMALL_OBJECT else "STANDARD"
            objects = 24 * days
            usd += objects * storage_cost(int(hour), kept, prices)
            stored += objects * hour
    return LineItem(f"raw: tiered over {retention} days", stored / GB, "GB-month", usd)


def _transitions(tables: Mapping[str, _Table], retention: int, prices: PriceList) -> LineItem:
    moving = sum(table.bytes_per_hour >= SMALL_OBJECT for table in tables.values()) * HOURS_PER_MONTH
    into = [tier for tier, days in raw_tiers(retention).items() if days and tier != "STANDARD"]
    per_object = sum(prices.transition_per_1000[tier] for tier in into) / 1000
    return LineItem("raw: lifecycle transitions", moving * len(into), "requests", moving * per_object)


def _athena(tables: Mapping[str, Mapping[str, _Table]], prices: PriceList) -> LineItem:
    queries = len(tables.get(GOLD, {}))
    scanned = sum(table.bytes_per_hour for table in tables.get(PROCESSED, {}).values())
    billed = max(scanned, queries * prices.athena_minimum_bytes) * HOURS_PER_MONTH
    return LineItem(f"Athena: {queries} gold queries an hour", billed / TB, "TB scanned",
                    billed / TB * prices.athena_per_tb)  # fmt: skip


def _glue(tables: Mapping[str, Mapping[str, _Table]], retention: int, prices: PriceList) -> LineItem:
    table_count = sum(map(len, tables.values()))
    objects = table_count * (1 + 24 * retention)  # a table and its hour partitions
    billable = max(0, objects - prices.glue_free_objects)
    return LineItem("Glue Data Catalog objects", objects, "objects", billable / 100_000 * prices.glue_per_100k_objects)


def render(report: CostReport) -> str:
    """The report as text tables for a terminal."""
    objects = sum(u.objects for u in report.usage)
    lines = ["Storage now (a month at list price)",
             f"  {'zone':<18} {'class':<12} {'objects':>9} {'bytes':>14} {'USD':>10}",
             *(f"  {u.zone:<18} {u.storage_class:<12} {u.objects:>9,} {u.bytes:>14,} {dollars(u.monthly_usd):>10}"
               for u in report.usage),
             f"  {'total':<31} {objects:>9,} {report.bytes:>14,} {dollars(report.monthly_now_usd):>10}",
             "",
             "Objects per partition (small files)",
             f"  {'zone':<12} {'partitions':>10} {'objects':>9} {'median':>7} {'max':>5} {'<128KB':>7}  busiest",
             *(f"  {p.zone:<12} {p.partitions:>10,} {p.objects:>9,} {p.median_objects:>7g} {p.max_objects:>5} "
               f"{p.small_objects:>7,}  {p.busiest}" for p in report.partitions),
             "",
             "Monthly at the observed volume (steady state)",
             *(f"  {line.item:<40} {line.quantity:>14,.{0 if line.unit in COUNTED else 3}f} {line.unit:<11} "
               f"{dollars(line.monthly_usd):>10}" for line in report.steady_state),
             f"  {'total':<67} {dollars(report.steady_state_usd):>10}",
             "",
             *(f"note: {note}" for note in report.notes)]  # fmt: skip
    return "\n".join(lines)


COUNTED = {"objects", "requests", "key"}
"""Units whose quantities are whole numbers."""


def dollars(amount: float) -> str:
    """Cents for amounts of a dollar or more, else four decimals (a test lake costs fractions of a cent)."""
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4f}"
