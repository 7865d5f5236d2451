"""`smartcity aws …`: the aws profile's infrastructure (template, plan, apply, destroy) and its local test bed."""

from __future__ import annotations

import json
import shlex

import click

from smartcity.commands import with_settings
from smartcity.errors import PlatformError
from smartcity.settings import Settings


@click.group("aws")
def aws_group() -> None:
    """The aws profile: its infrastructure as code, and a test bed of real S3 and AWS API servers on 127.0.0.1."""


def _require_s3_lake(settings: Settings) -> None:
    if not settings.lake_on_s3:
        raise PlatformError(
            "the aws commands describe an S3 lake: set SMARTCITY_LAKE_URI=s3://bucket/prefix (and usually "
            "SMARTCITY_PROFILE=aws)"
        )


@aws_group.command("template")
@with_settings
def template_command(settings: Settings) -> None:
    """Print the CloudFormation template of the infrastructure these settings describe (JSON)."""
    from smartcity_aws.stack import template

    _require_s3_lake(settings)
    click.echo(json.dumps(template(settings), indent=2))


@aws_group.command("plan")
@with_settings
def plan_command(settings: Settings) -> None:
    """Compare the account with the desired state and print what `apply` would change."""
    from smartcity_aws.deploy import Deployment

    _require_s3_lake(settings)
    changes = Deployment(settings).plan()
    for change in changes:
        click.echo(str(change))
    pending = [change for change in changes if change.action != "keep"]
    click.echo(f"{len(pending)} change(s) to apply" if pending else "nothing to change")


@aws_group.command("apply")
@with_settings
def apply_command(settings: Settings) -> None:
    """Make the account hold the desired state (idempotent: a second apply changes nothing)."""
    from smartcity_aws.deploy import Deployment

    _require_s3_lake(settings)
    for change in Deployment(settings).apply():
        click.echo(str(change))


@aws_group.command("destroy")
@click.option("--delete-data", is_flag=True, help="Also delete buckets that hold objects (the lake's data).")
@click.confirmation_option(prompt="Remove the platform's roles, database, workgroup and empty buckets?")
@with_settings
def destroy_command(settings: Settings, delete_data: bool) -> None:
    """Remove what `apply` made; buckets holding data are kept unless --delete-data."""
    from smartcity_aws.deploy import Deployment

    _require_s3_lake(settings)
    changes = Deployment(settings).destroy(delete_data=delete_data)
    for change in changes:
        click.echo(str(change))
    click.echo(f"{len(changes)} resource(s) handled" if changes else "nothing to remove")


@aws_group.command("cost")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@with_settings
def cost_command(settings: Settings, as_json: bool) -> None:
    """Bytes per zone and storage class, objects per partition, and the monthly S3, Athena and Glue bill at
    the lake's observed volume, from a dated table of list prices. A local lake is priced as if it were on S3."""
    from smartcity.object_store import storage_for
    from smartcity_aws.cost import lake_report, render

    inventory = storage_for(settings.lake, settings).inventory()
    if not inventory:
        raise PlatformError(f"the lake at {settings.lake} holds no objects yet: nothing to price")
    report = lake_report(inventory, settings)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else render(report))


@aws_group.group("testbed")
def testbed_group() -> None:
    """Real S3 (SeaweedFS) and AWS API (moto) servers on 127.0.0.1 for trying the aws profile on this machine."""


@testbed_group.command("start")
@with_settings
def testbed_start(settings: Settings) -> None:
    """Start the test bed (no-op for what runs) and print the variables that point clients at it."""
    from smartcity_aws.testbed import Testbed

    testbed = Testbed(settings)
    for service in testbed.services():
        started = service.start()
        state = "already running" if started.already_running else "started"
        click.echo(f"{service.title} {state} (pid {started.pid}): {service.summary}", err=True)
    click.echo("# point the platform and any AWS client at the test bed:", err=True)
    for name, value in {**testbed.client_environment(), **testbed.platform_environment()}.items():
        click.echo(f"export {name}={shlex.quote(value)}")


@testbed_group.command("install")
@with_settings
def testbed_install(settings: Settings) -> None:
    """Fetch and unpack what the test bed runs that is not a Python package (Trino with its Hive plugin, about
    450 MB, once per machine), starting nothing; `start` does this itself when needed."""
    from smartcity_aws import trino

    click.echo(f"Trino {trino.VERSION} ready: {trino.install(settings)}")


@testbed_group.command("stop")
@with_settings
def testbed_stop(settings: Settings) -> None:
    """Stop the test bed (S3 data stays under var/testbed; moto's state is in memory and goes)."""
    from smartcity_aws.testbed import Testbed

    for service in Testbed(settings).services():
        pid = service.stop()
        click.echo(f"{service.title}: {'stopped (pid ' + str(pid) + ')' if pid else 'was not running'}")


@testbed_group.command("status")
@with_settings
def testbed_status(settings: Settings) -> None:
    """Show whether the test bed runs, and where."""
    from smartcity_aws.testbed import Testbed

    for service in Testbed(settings).services():
        pid = service.pid()
        click.echo(f"{service.title}: {f'up (pid {pid}) {service.summary}' if pid else 'down'}")
