"""Lint and formatting are part of the suite, so CI fails on them like on any other defect."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from smartcity.settings import PROJECT_ROOT

RUFF = str(Path(sys.executable).with_name("ruff"))


def test_ruff_lint_passes() -> None:
    result = subprocess.run([RUFF, "check", "."], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    result = subprocess.run([RUFF, "format", "--check", "."], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
