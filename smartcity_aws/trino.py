"""Trino in the place of Athena's engine on the test bed: Athena's engine v3 is Trino, so SQL that runs here on
the Glue catalog and S3 is the closest runnable check of SQL meant for Athena.

One node on 127.0.0.1, coordinator and worker at once, with the Hive connector on the test bed's Glue (moto) and
S3 (SeaweedFS, over TLS with the test bed's certificate). Its catalog is named ``awsdatacatalog``, as Athena names
the Glue catalog, so a query names tables as it would on Athena. The server comes from Maven Central
(``trino-server-core`` and the Hive plugin, about 450 MB, once per machine into Ivy's cache) and needs Java 24+
(:func:`~smartcity.java.find_java_at_least`). Credentials reach it as the standard AWS variables, never in a file.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from smartcity.jars import Bundle, bundle_dir, resolve
from smartcity.java import find_java_at_least
from smartcity.services import ChosenPort, Service
from smartcity.settings import Settings

log = logging.getLogger(__name__)

VERSION = "476"
BUNDLE = Bundle("trino", (f"io.trino:trino-server-core:{VERSION}@tar.gz", f"io.trino:trino-hive:{VERSION}@zip"))
MINIMUM_JAVA = 24
CATALOG = "awsdatacatalog"
HEAP = "2G"
TRUSTSTORE_PASSWORD = "changeit"  # the JDK's default for its own trust store, which this one copies


def install(settings: Settings) -> Path:
    """The unpacked server with its Hive plugin beside its archives under ``var/jars/trino`` (resolved and unpacked
    once, and shared as the jars are); its directory."""
    server = bundle_dir(settings, BUNDLE) / f"trino-server-{VERSION}"
    if (server / ".installed").exists():
        return server
    archives = resolve(settings, BUNDLE)
    log.info("unpacking Trino %s into %s…", VERSION, server)
    shutil.rmtree(server, ignore_errors=True)
    unpacking = server.with_name(f".{server.name}")
    shutil.rmtree(unpacking, ignore_errors=True)
    with tarfile.open(archives / f"trino-server-core-{VERSION}.tar.gz") as tar:
        tar.extractall(unpacking, filter="data")
    [root] = unpacking.iterdir()
    with zipfile.ZipFile(archives / f"trino-hive-{VERSION}.zip") as plugin:
        plugin.extractall(root / "plugin")
    (root / "plugin" / f"trino-hive-{VERSION}").rename(root / "plugin" / "hive")
    (root / ".installed").write_text(VERSION)
    root.rename(server)
    shutil.rmtree(unpacking, ignore_errors=True)
    return server


class TrinoNode:
    """The test bed's Trino: its configuration under ``var/testbed/trino`` and its service."""

    def __init__(self, settings: Settings, root: Path, port: int, kept_in: Path, glue_endpoint: str,
                 s3_endpoint: str, certificate: Path, client_environment: dict[str, str]) -> None:  # fmt: skip
        self.settings, self.root, self.port, self.kept_in = settings, root, port, kept_in
        self.glue_endpoint, self.s3_endpoint, self.certificate = glue_endpoint, s3_endpoint, certificate
        self.client_environment = client_environment

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def catalog_properties(self) -> str:
        """The Hive connector on Glue and S3. moto ignores Glue's paging by segments and does not implement column
        statistics (``GetColumnStatisticsForPartition`` answers 500), so neither is used nor collected here."""
        region = self.settings.aws_region
        return "\n".join([
            "connector.name=hive", "hive.metastore=glue", f"hive.metastore.glue.region={region}",
            f"hive.metastore.glue.endpoint-url={self.glue_endpoint}", "hive.metastore.glue.partitions-segments=1",
            "fs.native-s3.enabled=true", f"s3.endpoint={self.s3_endpoint}", f"s3.region={region}",
            "s3.path-style-access=true", "s3.sse.type=S3", "hive.non-managed-table-writes-enabled=true",
            "hive.table-statistics-enabled=false", "hive.collect-column-statistics-on-write=false", "",
        ])  # fmt: skip

    def config_properties(self, server: Path) -> str:
        return "\n".join([
            "coordinator=true", "node-scheduler.include-coordinator=true", f"http-server.http.port={self.port}",
            f"discovery.uri={self.url}",
            "query.max-memory=1GB", "query.max-memory-per-node=1GB", f"catalog.config-dir={self.root / 'catalog'}",
            f"plugin.dir={server / 'plugin'}", "",
        ])  # fmt: skip

    def _truststore(self, java_home: Path) -> Path:
        """The JDK's trust store plus the test bed's certificate, so S3 over TLS is verified, not trusted blindly."""
        store = self.root / "truststore.jks"
        store.unlink(missing_ok=True)
        shutil.copyfile(java_home / "lib" / "security" / "cacerts", store)
        subprocess.run([str(java_home / "bin" / "keytool"), "-importcert", "-noprompt", "-alias", "testbed", "-file",
                        str(self.certificate), "-keystore", str(store), "-storepass", TRUSTSTORE_PASSWORD],
                       check=True, capture_output=True)  # fmt: skip
        return store

    def command(self) -> list[str]:
        server = install(self.settings)
        java = find_java_at_least(MINIMUM_JAVA)
        (self.root / "catalog").mkdir(parents=True, exist_ok=True)
        (self.root / "catalog" / f"{CATALOG}.properties").write_text(self.catalog_properties())
        (self.root / "config.properties").write_text(self.config_properties(server))
        store = self._truststore(java.home)
        return [str(java.executable), f"-Xmx{HEAP}", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
                f"-Djavax.net.ssl.trustStore={store}", f"-Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}",
                "-Dnode.environment=testbed", "-Dnode.id=testbed", f"-Dnode.data-dir={self.root / 'data'}",
                "-Dnode.bind-ip=127.0.0.1", "-Dnode.internal-address=127.0.0.1",  # loopback only
                f"-Dconfig={self.root / 'config.properties'}", "-cp", f"{server / 'lib'}/*",
                "io.trino.server.TrinoServer"]  # fmt: skip

    def service(self) -> Service:
        return Service(
            name="testbed-trino",
            title="Trino (Athena's engine)",
            summary=f"{self.url} (catalog {CATALOG}: the Glue catalog)",
            paths=self.settings.paths,
            command=self.command,
            markers=("io.trino.server.TrinoServer", str(self.root)),
            ports=(ChosenPort("127.0.0.1", self.port, self.kept_in),),
            env=self.client_environment,
            ready=lambda _pid: _started(self.url),
            ready_timeout=300.0,  # about 70 s on two busy cores
            stop_timeout=30.0,
        )


def _started(url: str) -> bool:
    """Trino answers ``/v1/info`` before it can run queries; ``starting`` turns false once it can."""
    try:
        with urllib.request.urlopen(f"{url}/v1/info", timeout=5) as response:
            return not json.loads(response.read())["starting"]
    except OSError:
        return False
