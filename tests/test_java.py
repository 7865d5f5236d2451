"""Java detection: a missing or too old Java is reported with what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.errors import JavaError
from smartcity.java import MINIMUM_JAVA, find_java, parse_major
from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "25" 2025-09-16', 25),
        ('openjdk version "21-ea" 2023-09-19', 21),
        ("no version here", None),
    ],
)
def test_parse_major(output: str, major: int | None) -> None:
    assert parse_major(output) == major


def fake_java_home(root: Path, version_line: str) -> Path:
    java = root / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return root


@pytest.mark.spark  # the machine's JDK
def test_the_machines_java_is_usable() -> None:
    assert find_java().major >= MINIMUM_JAVA


def test_too_old_java_names_what_to_install(tmp_path: Path) -> None:
    home = fake_java_home(tmp_path / "jdk8", 'java version "1.8.0_392"')
    with pytest.raises(JavaError, match=r"Java 8 found .* Java 17\+ is required. Install a JDK 17"):
        find_java(home)


def test_missing_java_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaError, match=r"no Java runtime found \(looked in PATH\). Install a JDK 17"):
        find_java()


def test_broker_start_with_old_java_fails_clearly(private_environment: dict[str, str], tmp_path: Path) -> None:
    home = fake_java_home(tmp_path / "jdk11", 'openjdk version "11.0.2" 2019-01-15')
    result = run_cli("kafka", "start", env={**private_environment, "SMARTCITY_JAVA_HOME": str(home)})
    assert result.returncode == 1
    assert "Java 11 found" in result.stderr
    assert "Install a JDK 17 or newer" in result.stderr
    assert "Traceback" not in result.stderr
