"""Resolve the JVM jars the platform runs (Kafka broker, Spark's Kafka connector) ahead of time.

Resolution uses Apache Ivy, the resolver Spark itself uses for ``--packages``, from the jar that the pinned
``pyspark`` wheel ships: nothing beyond Python and a JDK is needed. Ivy downloads into a per-user cache outside
the clone (``$XDG_CACHE_HOME/smartcity/ivy``, by default ``~/.cache/smartcity/ivy``), once per machine, and
``var/jars/<bundle>/`` holds links to the jars there: a fresh clone, CI, or a new ``var/`` never downloads the
S3 bundle's 700 MB again. Later calls are no-ops, and no Spark job or broker start downloads anything.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pyspark

from smartcity.errors import PlatformError
from smartcity.java import find_java
from smartcity.settings import Settings

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
# The broker logs through SLF4J 1.7 (bundled with Kafka 4.1); this binds it to Log4j 2.
LOG4J_VERSION = "2.24.3"
SPARK_VERSION = pyspark.__version__
PYSPARK_JARS = Path(pyspark.__file__).parent / "jars"
# hadoop-aws must match the Hadoop client that pyspark ships (hadoop-client-api-<version>.jar).
HADOOP_VERSION = next(
    (jar.stem.removeprefix("hadoop-client-api-") for jar in PYSPARK_JARS.glob("hadoop-client-api-*.jar")), "3.5.0"
)
_STAMP = ".resolved"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "smartcity" / "ivy"
"""Ivy's cache of Maven artifacts, shared by every clone of this user."""
_JAR_NAME = re.compile(r"^(?P<artifact>.+?)-\d[\w.]*(?:-[A-Za-z]\w*)?\.jar$")


@dataclass(frozen=True)
class Bundle:
    """A named set of Maven coordinates resolved together, with their runtime dependencies."""

    name: str
    coordinates: tuple[str, ...]
    # Drop jars that pyspark already ships, so Spark never sees two versions of one library.
    exclude_pyspark_jars: bool = False

    def ivy_xml(self) -> str:
        lines = [_dependency(coordinate) for coordinate in self.coordinates]
        return (
            '<ivy-module version="2.0">\n'
            f'  <info organisation="smartcity" module={quoteattr(self.name)}/>\n'
            "  <dependencies>\n    " + "\n    ".join(lines) + "\n  </dependencies>\n</ivy-module>\n"
        )


def _dependency(coordinate: str) -> str:
    """Ivy's element for ``group:artifact:version``, or ``group:artifact:version@ext`` for a packaged archive
    (a tarball or a zip: that file alone, without dependencies)."""
    group, artifact, version = coordinate.split(":")
    version, _, ext = version.partition("@")
    attributes = f"org={quoteattr(group)} name={quoteattr(artifact)} rev={quoteattr(version)}"
    if not ext:
        return f'<dependency {attributes} conf="default->default"/>'
    archive = f"<artifact name={quoteattr(artifact)} type={quoteattr(ext)} ext={quoteattr(ext)}/>"
    return f'<dependency {attributes} transitive="false">{archive}</dependency>'


def _types(bundle: Bundle) -> list[str]:
    """The artifact types Ivy retrieves for the bundle: jars, and the archives it names."""
    return ["jar", "bundle", *sorted({c.partition("@")[2] for c in bundle.coordinates} - {""})]


KAFKA_BROKER = Bundle(
    "kafka-broker",
    (
        f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
        f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
    ),
)
SPARK_KAFKA = Bundle(
    "spark-kafka",
    (f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_VERSION}",),
    exclude_pyspark_jars=True,
)
# S3A for a lake on S3; with its AWS SDK bundle (about 700 MB), so resolved only when the lake is on S3.
SPARK_S3 = Bundle("spark-s3", (f"org.apache.hadoop:hadoop-aws:{HADOOP_VERSION}",), exclude_pyspark_jars=True)
BUNDLES = (KAFKA_BROKER, SPARK_KAFKA)


def artifact_name(jar: Path) -> str:
    """'kafka-clients-3.9.2.jar' → 'kafka-clients'."""
    match = _JAR_NAME.match(jar.name)
    return match.group("artifact") if match else jar.stem


def _ivy_jar() -> Path:
    candidates = sorted(PYSPARK_JARS.glob("ivy-*.jar"))
    if not candidates:
        raise PlatformError(f"no Ivy jar in {PYSPARK_JARS}; reinstall the environment (make setup)")
    return candidates[-1]


def bundle_dir(settings: Settings, bundle: Bundle) -> Path:
    return settings.paths.jars / bundle.name


def is_resolved(settings: Settings, bundle: Bundle) -> bool:
    stamp = bundle_dir(settings, bundle) / _STAMP
    return stamp.exists() and stamp.read_text() == "\n".join(bundle.coordinates)


def classpath(settings: Settings, bundle: Bundle) -> list[Path]:
    """The bundle's jars, resolving them first if needed."""
    resolve(settings, bundle)
    return sorted(bundle_dir(settings, bundle).glob("*.jar"))


def resolve(settings: Settings, bundle: Bundle) -> Path:
    """Resolve ``bundle`` into ``var/jars/<name>/`` unless already there; return the directory."""
    target = bundle_dir(settings, bundle)
    if is_resolved(settings, bundle):
        return target
    settings.paths.ensure()
    java = find_java(settings.java_home)
    log.info("resolving %s (%s) into %s (once per machine)…", bundle.name, ", ".join(bundle.coordinates), CACHE)
    with tempfile.TemporaryDirectory(dir=settings.paths.jars, prefix=f".{bundle.name}-") as staging:
        staging_dir = Path(staging)
        (staging_dir / "ivy.xml").write_text(bundle.ivy_xml())
        retrieved = staging_dir / "jars"
        command = [
            str(java.executable),
            "-jar",
            str(_ivy_jar()),
            "-ivy",
            str(staging_dir / "ivy.xml"),
            "-confs",
            "default",
            "-cache",
            str(CACHE),
            "-retrieve",
            f"{retrieved}/[artifact]-[revision](-[classifier]).[ext]",
            "-symlink",  # links into the cache, not copies
            "-types",
            *_types(bundle),
        ]
        log_file = settings.paths.logs / f"jars-{bundle.name}.log"
        with log_file.open("w") as out:
            result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            tail = "\n".join(log_file.read_text().splitlines()[-15:])
            raise PlatformError(
                f"could not resolve {bundle.name} from Maven Central (exit {result.returncode}); "
                f"full log in {log_file}:\n{tail}"
            )
        if bundle.exclude_pyspark_jars:
            shipped = {artifact_name(jar) for jar in PYSPARK_JARS.glob("*.jar")}
            for jar in retrieved.glob("*.jar"):
                if artifact_name(jar) in shipped:
                    jar.unlink()
        (retrieved / _STAMP).write_text("\n".join(bundle.coordinates))
        if target.exists():
            shutil.rmtree(target)
        retrieved.rename(target)
    artifacts = [path for path in target.iterdir() if path.is_file() and path.name != _STAMP]
    log.info("resolved %s: %d artifacts in %s", bundle.name, len(artifacts), target)
    return target


def spark_bundles(settings: Settings) -> tuple[Bundle, ...]:
    """What the Spark jobs need: the Kafka connector, and S3A when the lake is on S3."""
    return (SPARK_KAFKA, SPARK_S3) if settings.lake_on_s3 else (SPARK_KAFKA,)


def needed_bundles(settings: Settings) -> tuple[Bundle, ...]:
    """Every bundle these settings run: the broker's and the Spark jobs'."""
    return tuple(dict.fromkeys((*BUNDLES, *spark_bundles(settings))))


def resolve_all(settings: Settings) -> None:
    for bundle in needed_bundles(settings):
        resolve(settings, bundle)
