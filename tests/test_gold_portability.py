"""One set of gold models for DuckDB (local) and Athena: the dbt-athena target compiles every model against the
test bed's Glue catalog, into SQL in Athena's dialect that names the Glue tables. (The same models run on Trino,
Athena's engine, in tests/test_aws_graph.py.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from smartcity.lake_layout import Hour
from smartcity_aws.access import names
from smartcity_aws.deploy import Deployment
from smartcity_aws.testbed import Testbed
from tests.conftest import settings_from
from tests.dbt_compile import GOLD_MODELS, compiled_models

DUCKDB_ONLY = {
    "a :: cast": re.compile(r"::"),
    "GROUP BY ALL": re.compile(r"group by all", re.IGNORECASE),
    "arg_min/arg_max": re.compile(r"\barg_(min|max)\("),
    "any_value (Athena has arbitrary)": re.compile(r"\bany_value\("),
    "a list literal": re.compile(r"\[\s*'"),
    "list_position": re.compile(r"list_position"),
}


def test_dbt_athena_compiles_every_gold_model(on_testbed: dict[str, str], aws_testbed: Testbed, tmp_path: Path) -> None:
    settings = settings_from({**on_testbed, **aws_testbed.platform_environment()})
    Deployment(settings).apply()  # the Glue database and the Athena workgroup the target names
    database, bucket = names(settings)["database"], settings.lake_bucket
    target = {"type": "athena", "region_name": settings.aws_region, "database": "awsdatacatalog",
              "schema": database, "work_group": names(settings)["workgroup"], "threads": 1,
              "s3_staging_dir": f"s3://{bucket}/athena-results/",
              "s3_data_dir": f"s3://{bucket}/lake/gold/"}  # fmt: skip
    models = compiled_models(target, Hour(datetime(2026, 3, 1, 10, tzinfo=UTC)), tmp_path)
    assert sorted(models) == GOLD_MODELS
    for model, sql in models.items():
        assert f'"awsdatacatalog"."{database}".' in sql, model
        assert "timestamp '2026-03-01 10:00:00'" in sql and "timestamp '2026-03-01 11:00:00'" in sql, model
        found = [name for name, pattern in DUCKDB_ONLY.items() if pattern.search(sql)]
        assert found == [], f"{model} compiled for Athena still has DuckDB's {', '.join(found)}"
    assert "arbitrary(fuel_type)" in models["fleet_hourly"]
