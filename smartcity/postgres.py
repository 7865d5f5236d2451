"""A PostgreSQL server from the system's packages, on loopback, as a platform service: the aws test bed's stand-in
for Redshift and the store of Dagster's state, and the tests' server.

PostgreSQL refuses to run as root, so under root the server runs as the ``postgres`` user (``setpriv`` executes it
in place, so the service's pid is the server's), and its data lives outside trees that only root may enter.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from smartcity.errors import PlatformError
from smartcity.services import ChosenPort, Service, listens
from smartcity.settings import RuntimePaths

HOST = "127.0.0.1"
USER = "smartcity"
"""The superuser of the cluster (trust authentication on loopback: a test bed, not a deployment)."""


def bindir() -> Path:
    """The newest installed server's programs."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: int(path.parent.name))
    if not found:
        raise PlatformError("PostgreSQL is not installed: `make test` installs it (Debian package postgresql)")
    return found[-1]


def _as_server_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]


def data_directory(wanted: Path) -> Path:
    """``wanted``, or under root a directory of its own in the system's temporary directory: the server user may
    not be able to enter ``wanted``'s parents (pytest's are 0700)."""
    if os.geteuid() != 0:
        return wanted
    return Path(tempfile.gettempdir()) / f"smartcity-pg-{hashlib.sha256(str(wanted).encode()).hexdigest()[:12]}"


def init_cluster(data: Path, databases: tuple[str, ...]) -> None:
    """Create the cluster and its databases once (the server is not running yet: single-user mode)."""
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    run = _as_server_user()
    subprocess.run([*run, bindir() / "initdb", "-D", data, "-A", "trust", "-U", USER, "--no-sync"],
                   check=True, capture_output=True)  # fmt: skip
    create = "".join(f"CREATE DATABASE {name};\n" for name in databases)
    subprocess.run([*run, bindir() / "postgres", "--single", "-D", data, "postgres"], input=create.encode(),
                   check=True, capture_output=True)  # fmt: skip


def postgres_service(paths: RuntimePaths, name: str, data: Path, port: int, kept_in: Path,
                     databases: tuple[str, ...] = (), title: str = "PostgreSQL") -> Service:  # fmt: skip
    """The server of the cluster in ``data`` (created with ``databases`` on first start) on ``127.0.0.1:port``."""
    data = data_directory(data)

    def command() -> list[str]:
        init_cluster(data, databases)
        return [*_as_server_user(), str(bindir() / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
                "-c", f"listen_addresses={HOST}", "-c", "fsync=off"]  # fmt: skip

    return Service(
        name=name,
        title=title,
        summary=url(port, "postgres"),
        paths=paths,
        command=command,
        markers=("postgres", str(data)),
        ports=(ChosenPort(HOST, port, kept_in),),
        ready=lambda _pid: listens(HOST, port),
        ready_timeout=60.0,
        stop_signal=signal.SIGINT,  # fast shutdown: SIGTERM would wait for every client to leave
        stop_timeout=30.0,
    )


def url(port: int, database: str) -> str:
    return f"postgresql://{USER}@{HOST}:{port}/{database}"
