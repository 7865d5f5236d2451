"""Find a Java runtime new enough for Kafka 4 and Spark 4 (both need Java 17 or newer)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from smartcity.errors import JavaError

MINIMUM_JAVA = 17
INSTALL_HINT = (
    "Install a JDK 17 or newer (Debian/Ubuntu: `apt-get install openjdk-17-jdk-headless`; "
    "macOS: `brew install openjdk@17`) and put it on PATH or set JAVA_HOME (or SMARTCITY_JAVA_HOME)."
)
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


@dataclass(frozen=True)
class Java:
    executable: Path
    major: int

    @property
    def home(self) -> Path:
        return self.executable.resolve().parent.parent


def _candidate(java_home: Path | None) -> tuple[Path | None, str]:
    home = java_home or (Path(os.environ["JAVA_HOME"]) if os.environ.get("JAVA_HOME") else None)
    if home is not None:
        return home / "bin" / "java", f"JAVA_HOME={home}"
    found = shutil.which("java")
    return (Path(found) if found else None), "PATH"


def parse_major(version_output: str) -> int | None:
    """Major version from `java -version` output: '1.8.0_392' → 8, '17.0.15' → 17, '25' → 25."""
    match = _VERSION.search(version_output)
    if not match:
        return None
    first, second = int(match.group(1)), match.group(2)
    return int(second) if first == 1 and second is not None else first


def find_java(java_home: Path | None = None) -> Java:
    """Return a usable Java or raise :class:`JavaError` naming what to install."""
    executable, source = _candidate(java_home)
    if executable is None or not executable.exists():
        raise JavaError(f"no Java runtime found (looked in {source}). {INSTALL_HINT}")
    try:
        result = subprocess.run([str(executable), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JavaError(f"{executable} -version failed ({exc}). {INSTALL_HINT}") from exc
    major = parse_major(result.stderr + result.stdout)
    if major is None:
        raise JavaError(f"could not read the version of {executable} (from {source}). {INSTALL_HINT}")
    if major < MINIMUM_JAVA:
        raise JavaError(
            f"Java {major} found at {executable} (from {source}), but Java {MINIMUM_JAVA}+ is required. {INSTALL_HINT}"
        )
    return Java(executable=executable, major=major)


def find_java_at_least(minimum: int, java_home: Path | None = None) -> Java:
    """A Java of at least ``minimum``: ``java_home``, then JAVA_HOME and PATH, then the newest JDK installed beside
    them (``/usr/lib/jvm``), for a tool that needs a newer Java than the platform's own (Trino)."""
    homes = [java_home] if java_home else []
    homes += sorted(Path("/usr/lib/jvm").glob("*/"), reverse=True) if Path("/usr/lib/jvm").is_dir() else []
    found: list[Java] = []
    for home in [None, *homes]:
        try:
            found.append(find_java(home))
        except JavaError:
            continue
    suitable = [java for java in found if java.major >= minimum]
    if not suitable:
        seen = ", ".join(f"{java.major} ({java.executable})" for java in found) or "none"
        raise JavaError(f"Java {minimum}+ is needed (found: {seen}); install a JDK {minimum} or newer, or set its home")
    return max(suitable, key=lambda java: java.major)
