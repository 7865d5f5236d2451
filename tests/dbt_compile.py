"""The gold models as dbt compiles them for another engine's target, read from dbt's compiled output."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from smartcity.lake_layout import Hour
from smartcity_dagster.resources.dbt import DBT_PROJECT_DIR, PROFILE

PROJECT = "smartcity"  # dbt_project.yml's name: compiled SQL goes under target/compiled/<project>/
GOLD_MODELS = sorted(path.stem for path in (DBT_PROJECT_DIR / "models" / "gold").glob("*.sql"))


def compiled_models(target: dict[str, Any], hour: Hour, directory: Path) -> dict[str, str]:
    """Every gold model compiled by dbt for ``target`` (a profile output) and the hour's window."""
    profile = {PROFILE: {"target": "engine", "outputs": {"engine": target}}}
    (directory / "profiles.yml").write_text(yaml.safe_dump(profile))
    window = {"window_start": f"{hour.start:%Y-%m-%d %H:%M:%S}",
              "window_end": f"{hour.start + timedelta(hours=1):%Y-%m-%d %H:%M:%S}"}  # fmt: skip
    compiled = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), "compile", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(directory), "--target-path", str(directory / "target"), "--log-path",
         str(directory / "logs"), "--select", "path:models/gold", "--vars", json.dumps(window)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    models = directory / "target" / "compiled" / PROJECT / "models" / "gold"
    return {path.stem: path.read_text() for path in sorted(models.glob("*.sql"))}
