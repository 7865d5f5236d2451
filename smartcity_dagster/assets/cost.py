"""The lake's cost report as an asset: what the lake holds per zone and storage class, its small files, and the
monthly S3, Athena and Glue bill at the observed volume (:mod:`smartcity_aws.cost`), refreshed every morning.

On the local profile it prices the local lake as if it were on S3: the figure to expect before moving."""

import dagster as dg

from smartcity.settings import Settings
from smartcity_aws.cost import COUNTED, CostReport, dollars, lake_report
from smartcity_dagster.assets.groups import COST
from smartcity_dagster.assets.keys import LAKE_COST_KEY, OWNERS
from smartcity_dagster.resources.lake import LakeStorage


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def report_metadata(report: CostReport) -> dict[str, dg.MetadataValue]:
    """Totals as numbers (plotted across materializations in the UI) and the report's tables as Markdown."""
    storage = [
        [u.zone, u.storage_class, f"{u.objects:,}", f"{u.bytes:,}", dollars(u.monthly_usd)] for u in report.usage
    ]
    small = [[p.zone, p.partitions, p.objects, p.median_objects, p.max_objects, p.small_objects, p.busiest]
             for p in report.partitions]  # fmt: skip
    steady = [[line.item, f"{line.quantity:,.{0 if line.unit in COUNTED else 3}f} {line.unit}",
               dollars(line.monthly_usd)] for line in report.steady_state]  # fmt: skip
    return {
        "bytes": dg.MetadataValue.int(report.bytes),
        "objects": dg.MetadataValue.int(sum(u.objects for u in report.usage)),
        "storage_now_usd_per_month": dg.MetadataValue.float(round(report.monthly_now_usd, 6)),
        "steady_state_usd_per_month": dg.MetadataValue.float(round(report.steady_state_usd, 6)),
        "prices_as_of": dg.MetadataValue.text(f"{report.prices.as_of} ({report.prices.region} list prices)"),
        "storage_now": dg.MetadataValue.md(markdown_table(["zone", "class", "objects", "bytes", "USD/month"], storage)),
        "objects_per_partition": dg.MetadataValue.md(markdown_table(
            ["zone", "partitions", "objects", "median", "max", "< 128 KB", "busiest partition"], small)),
        "steady_state": dg.MetadataValue.md(markdown_table(["item", "quantity", "USD/month"], steady)
                                            + "\n\n" + "\n".join(f"- {note}" for note in report.notes)),
    }  # fmt: skip


def build_lake_cost(settings: Settings) -> tuple[dg.AssetsDefinition, dg.JobDefinition, dg.ScheduleDefinition]:
    """The cost report asset, and the daily schedule that refreshes it."""

    @dg.asset(
        key=LAKE_COST_KEY,
        group_name=COST,
        owners=OWNERS,
        kinds={"s3", "athena"},
        description="What the lake costs: bytes per zone and storage class, objects per partition (small files), "
        "and the monthly S3, Athena and Glue bill at the observed volume under the lifecycle rules, from a dated "
        "table of list prices. `smartcity aws cost` prints the same report.",
    )
    def lake_cost(context: dg.AssetExecutionContext, lake: LakeStorage) -> dg.MaterializeResult:
        report = lake_report(lake.store.inventory(), settings)
        context.log.info(
            f"{report.bytes:,} bytes in the lake cost {dollars(report.monthly_now_usd)} a month now; "
            f"{dollars(report.steady_state_usd)} a month at this volume once the retention fills"
        )
        return dg.MaterializeResult(metadata=report_metadata(report))

    job = dg.define_asset_job("lake_cost_job", selection=[LAKE_COST_KEY], description="Refresh the lake's cost report.")
    schedule = dg.ScheduleDefinition(
        job=job, cron_schedule="0 6 * * *", default_status=dg.DefaultScheduleStatus.RUNNING
    )
    return lake_cost, job, schedule
