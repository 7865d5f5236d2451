"""The aws query engine's own logic, without an engine: how the files an engine names map into the lake, and the
engine types it knows. Building and publishing on a real engine (Trino) is ``tests/test_aws_graph.py``."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from dagster_aws.s3 import S3Resource

from smartcity_dagster.resources.athena import _type
from smartcity_dagster.resources.lake import LocalLake
from smartcity_dagster.resources.s3_lake import S3Lake


def test_an_engine_file_maps_to_its_lake_key_and_one_outside_the_lake_is_refused(tmp_path: Path) -> None:
    on_s3 = S3Lake(root="s3://city-lake/lake", s3=S3Resource(region_name="us-east-1"))
    key = "_staging/gold-build/abc/gold_build_fleet_hourly/event_date=2026-12-01/event_hour=07/20261201_x"
    assert on_s3.key_of(f"s3://city-lake/lake/{key}") == key
    assert on_s3.key_of(f"s3a://city-lake/lake/{key}") == key
    with pytest.raises(ValueError, match="is not in the lake s3://city-lake/lake/"):
        on_s3.key_of(f"s3://city-lake/lake-other/{key}")
    local = LocalLake(root=str(tmp_path / "lake"), checkpoint=str(tmp_path / "checkpoint"))
    assert local.key_of(str(tmp_path / "lake" / "gold" / "x.parquet")) == "gold/x.parquet"


@pytest.mark.parametrize(
    ("engine_type", "glue", "arrow"),
    [("varchar", "string", pa.string()), ("timestamp(3)", "timestamp", pa.timestamp("us")),
     ("double", "double", pa.float64()), ("bigint", "bigint", pa.int64()), ("integer", "int", pa.int32())],
)  # fmt: skip
def test_engine_types_map_to_glue_and_arrow(engine_type: str, glue: str, arrow: pa.DataType) -> None:
    assert _type(engine_type) == (glue, arrow)


def test_a_type_without_a_mapping_is_named_not_guessed() -> None:
    """A decimal average (Trino keeps a decimal literal's scale) must not reach Glue as a string."""
    with pytest.raises(TypeError, match=r"'decimal\(2,1\)'"):
        _type("decimal(2,1)")
