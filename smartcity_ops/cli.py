"""The ``smartcity`` command: one entry point for operating the platform.

Each component owns its commands (`kafka` the base, `simulate` the simulator, `stream` the stream, `dashboard`
the dashboard, `aws` the aws profile's infrastructure); this module assembles them with the platform-wide ones
(`config`, `setup`, `up`, `down`, `run`, `status`). Every subcommand reads the same settings (``SMARTCITY_*``
variables, see ``smartcity config``) and reports failures as one clear message with a non-zero exit status
instead of a traceback.
"""

from __future__ import annotations

import os
import sys

import click

from dashboard.serve import dashboard_command
from simulator.cli import simulate_command
from smartcity.commands import configure_logging, run, with_settings
from smartcity.errors import PlatformError
from smartcity.kafka.commands import kafka_group
from smartcity.settings import Settings, setting_sources, variable_of
from smartcity_aws.commands import aws_group
from spark_streaming.commands import stream_group

OPTIONAL_SERVICES = ("simulator", "stream", "spark", "daemon", "dagster", "dashboard")
"""What `up` may be told to start (the broker always runs); the supervisor's table, checked by a test."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smartcity-platform", prog_name="smartcity")
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def cli(verbose: bool) -> None:
    """Operate the smart-city data platform (local profile by default; see `smartcity config`)."""
    configure_logging(verbose)


SETTINGS_HELP = "\b\nSettings (environment variables, or lines of .env):\n" + "\n".join(
    f"  {variable_of(name)}: {field.description}" for name, field in Settings.model_fields.items()
)


@cli.command("config", epilog=SETTINGS_HELP)
@with_settings
def config_command(settings: Settings) -> None:
    """Validate the configuration and print every setting's effective value and where it came from (environment,
    .env or default); the lines can be sourced by a shell."""
    items = settings.public_items()
    origins = setting_sources()
    sources = {variable_of(name): source for name, source in origins.items()}
    items[variable_of("java_home")], sources[variable_of("java_home")] = java_in_use(settings, origins["java_home"])
    width = max(len(f"{variable}={value}") for variable, value in items.items())
    for variable, value in items.items():
        click.echo(f"{f'{variable}={value}':{width}}  # {sources[variable]}")


def java_in_use(settings: Settings, source: str) -> tuple[str, str]:
    """The JDK the platform will run, and why that one (or why none); ``source``: where SMARTCITY_JAVA_HOME came
    from."""
    from smartcity.errors import JavaError
    from smartcity.java import find_java

    try:
        java = find_java(settings.java_home)
    except JavaError as problem:
        return "", f"none usable: {problem}"
    origin = source if settings.java_home else "JAVA_HOME" if os.environ.get("JAVA_HOME") else "PATH"
    return str(java.home), f"{origin}, Java {java.major}"


@cli.command("setup")
@with_settings
def setup_command(settings: Settings) -> None:
    """Create var/, resolve the JVM jars (Kafka broker, Spark Kafka connector, S3A for an S3 lake) and prepare the
    dbt project's manifest, each once."""
    from smartcity.jars import bundle_dir, needed_bundles
    from smartcity_ops.supervisor import setup

    setup(settings)
    for bundle in needed_bundles(settings):
        click.echo(f"{bundle.name}: {len(list(bundle_dir(settings, bundle).glob('*.jar')))} jars ready")
    click.echo("dbt project: manifest ready")


def chosen(services: tuple[str, ...], simulate: bool, stream: bool) -> list[str]:
    """The optional services to start: those named (all when none is), without those switched off."""
    off = {"simulator": not simulate, "stream": not stream}
    return [name for name in services or OPTIONAL_SERVICES if not off.get(name, False)]


@cli.command("up")
@click.argument("services", nargs=-1, type=click.Choice(OPTIONAL_SERVICES))
@click.option("--simulate/--no-simulate", default=True, show_default=True, help="Start the city simulator too.")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Start the ingestion stream too.")
@with_settings
def up_command(settings: Settings, services: tuple[str, ...], simulate: bool, stream: bool) -> None:
    """Start the platform in the background; `down` stops it.

    With no SERVICES: the broker, simulator, stream, Spark Connect server (processing), Dagster daemon, Dagster
    UI and dashboard. Naming SERVICES starts only those (and the broker); services already up are left alone,
    so after a crash `up` restarts what is missing.
    """
    from dashboard.serve import dashboard_url
    from smartcity_dagster.services import dagster_url
    from smartcity_ops.supervisor import up

    for name, state in up(settings, chosen(services, simulate, stream)).items():
        click.echo(f"  {name:10s} {state}")
    click.echo(f"dashboard {dashboard_url(settings)} · Dagster {dagster_url(settings)} · logs {settings.paths.logs}")


@cli.command("down")
@click.argument("services", nargs=-1, type=click.Choice(("kafka", *OPTIONAL_SERVICES)))
@with_settings
def down_command(settings: Settings, services: tuple[str, ...]) -> None:
    """Stop SERVICES (all of them and the broker when none is named); each stops gracefully (the stream commits its
    batch)."""
    from smartcity_ops.supervisor import down

    for name, state in down(settings, services).items():
        click.echo(f"  {name:10s} {state}")


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON, for machines.")
@with_settings
def status_command(settings: Settings, as_json: bool) -> int:
    """Show each component up or down, the stream's lag, the newest hour per asset group and data freshness.

    \b
    Exit status: 0 healthy (every service up but the optional simulator, Kafka answering),
                 3 degraded (something runs, something is missing),
                 4 not running (no service runs).
    """
    from smartcity_ops import status

    state = status.health(settings)
    click.echo(status.as_json(state) if as_json else status.render(state))
    return state.exit_code


YES = click.option("-y", "--yes", is_flag=True, help="Do not ask before deleting (nor does a non-interactive stdin).")


def wipe(settings: Settings, yes: bool) -> None:
    """Delete var/ but the jars, after asking at a terminal (unless ``yes``); refuses while a service runs."""
    from smartcity_ops.supervisor import wipe_runtime_state

    question = f"Delete everything under {settings.paths.root} (broker data, lake, warehouse, Dagster; not the jars)?"
    if not yes and sys.stdin.isatty() and not click.confirm(question, err=True):
        raise PlatformError("nothing deleted (answer y, or pass --yes)")
    for path in wipe_runtime_state(settings):
        click.echo(f"removed {path}")


@cli.command("clean")
@YES
@with_settings
def clean_command(settings: Settings, yes: bool) -> None:
    """Delete everything written at run time under var/ (broker data, lake, checkpoints, warehouse, Dagster; not the
    resolved jars); refuses while a service runs."""
    wipe(settings, yes)


@cli.command("run")
@click.option("--simulate/--no-simulate", default=True, show_default=True, help="Run the city simulator too.")
@click.option("--stream/--no-stream", default=True, show_default=True, help="Run the ingestion stream too.")
@click.option("--fresh", is_flag=True, help="Delete var/ first, as `smartcity clean` does (it asks; see --yes).")
@YES
@with_settings
def run_command(settings: Settings, simulate: bool, stream: bool, fresh: bool, yes: bool) -> None:
    """Run the platform in the foreground: broker, simulator, stream, Dagster (daemon and UI), dashboard.

    Ctrl-C stops them all.

    Running it again resumes where it stopped (Kafka, the stream's checkpoint and Dagster's cursors persist in
    var/); --fresh starts over from nothing.
    """
    from smartcity_ops.supervisor import run_platform

    if fresh:
        wipe(settings, yes)
    run_platform(settings, chosen((), simulate, stream))


cli.add_command(kafka_group)
cli.add_command(simulate_command)
cli.add_command(stream_group)
cli.add_command(dashboard_command)
cli.add_command(aws_group)


def main() -> None:
    """Console-script entry point."""
    run(cli)
