"""moto in server mode for the test bed, answering the Glue column-statistics calls it does not implement.

Trino's Hive connector on Glue deletes a new table's column statistics when it commits a ``CREATE TABLE AS`` (even
with statistics collection off), and moto answers every column-statistics call with a 500. Here they are answered
as Glue answers for tables without statistics: none to return, none kept. The test bed's Trino plans without
statistics anyway (``hive.table-statistics-enabled=false``), so nothing reads what would have been kept.
"""

from __future__ import annotations

import json
import sys

from moto.glue.responses import GlueResponse
from moto.server import main


def _none_found(_response: GlueResponse) -> str:
    return json.dumps({"ColumnStatisticsList": [], "Errors": []})


def _none_kept(_response: GlueResponse) -> str:
    return json.dumps({"Errors": []})


def _deleted(_response: GlueResponse) -> str:
    return "{}"


for scope in ("table", "partition"):
    setattr(GlueResponse, f"get_column_statistics_for_{scope}", _none_found)
    setattr(GlueResponse, f"update_column_statistics_for_{scope}", _none_kept)
    setattr(GlueResponse, f"delete_column_statistics_for_{scope}", _deleted)

if __name__ == "__main__":
    main(sys.argv[1:])
