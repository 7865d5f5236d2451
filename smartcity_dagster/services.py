"""Dagster's own services on the platform: the daemon (sensors, automation, the run queue) and the webserver (the
UI), both loading ``workspace.yaml`` with their instance under ``var/dagster``.

They run as two services (not ``dagster dev``), so each can crash, be restarted and be watched on its own.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path

from smartcity.atomic import write_private
from smartcity.services import Port, Service, answers
from smartcity.settings import PROJECT_ROOT, Settings

WORKSPACE = PROJECT_ROOT / "workspace.yaml"
INSTANCE_CONFIG = PROJECT_ROOT / "dagster.yaml"


def dagster_url(settings: Settings) -> str:
    return f"http://{settings.dagster_host}:{settings.dagster_port}"


def dagster_home(settings: Settings) -> Path:
    """``DAGSTER_HOME``: the instance (runs, events, cursors) of this var/, configured by the project's dagster.yaml."""
    return settings.paths.dagster_home


def instance_config(settings: Settings) -> str:
    """The instance's ``dagster.yaml``: the project's, with storage in PostgreSQL when
    ``SMARTCITY_DAGSTER_STORAGE_URL`` is set (else SQLite files under the home)."""
    config = INSTANCE_CONFIG.read_text()
    if settings.dagster_storage_url is None:
        return config
    # dagster-postgres's SQL is written for psycopg2; SQLAlchemy would pick psycopg 3 for a bare postgresql:// URL
    driver_url = "postgresql+psycopg2://" + settings.dagster_storage_url.split("://", 1)[1]
    url = json.dumps(driver_url)  # a JSON string is a YAML scalar
    return (
        f"{config}\n# SMARTCITY_DAGSTER_STORAGE_URL: runs, events, schedules and sensor cursors in PostgreSQL\n"
        f"storage:\n  postgres:\n    postgres_url: {url}\n"
    )


def prepare_instance(settings: Settings) -> Path:
    """Write the instance's configuration, create its storage here, in one process, and return its home.

    The daemon and the webserver starting together on a fresh home both created it, and two alembic stamps made
    every later open of the instance fail ("more than one head present"). The configuration may hold the storage
    URL's password, so only its owner can read it (as ``.env``).
    """
    import dagster as dg  # here, so commands without Dagster do not pay for importing it

    home = dagster_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    write_private(home / "dagster.yaml", instance_config(settings))
    logging.getLogger("alembic").setLevel(logging.WARNING)  # creating or checking the schema is not news
    with dg.DagsterInstance.from_config(str(home)):
        pass
    return home


def _script(name: str) -> str:
    """A console script installed beside this interpreter (the project's virtual environment)."""
    return str(Path(sys.executable).with_name(name))


def daemon_service(settings: Settings) -> Service:
    """The Dagster daemon: sensors, declarative automation, the run queue, run monitoring and retries."""

    def command() -> list[str]:
        prepare_instance(settings)
        return [_script("dagster-daemon"), "run", "-w", str(WORKSPACE)]

    return Service(
        name="daemon",
        title="Dagster daemon",
        summary="sensors and automation running",
        paths=settings.paths,
        command=command,
        markers=("dagster-daemon",),
        stop_signal=signal.SIGINT,  # Dagster stops its code servers on Ctrl-C
        env={"DAGSTER_HOME": str(dagster_home(settings))},
        needs=("spark",),  # when both start, the first runs' processing finds the Spark Connect server up
    )


def webserver_service(settings: Settings) -> Service:
    """The Dagster webserver (the UI) on the configured address, ready once it answers."""
    url = dagster_url(settings)

    def command() -> list[str]:
        prepare_instance(settings)
        return [_script("dagster-webserver"), "-w", str(WORKSPACE),
                "--host", settings.dagster_host, "--port", str(settings.dagster_port)]  # fmt: skip

    return Service(
        name="dagster",
        title="Dagster UI",
        summary=url,
        paths=settings.paths,
        command=command,
        markers=("dagster-webserver",),
        ports=(Port(settings.dagster_host, settings.dagster_port, "DAGSTER_PORT"),),
        ready=lambda _pid: answers(f"{url}/server_info"),
        stop_signal=signal.SIGINT,
        env={"DAGSTER_HOME": str(dagster_home(settings))},
    )
