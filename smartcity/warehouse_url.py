"""``SMARTCITY_WAREHOUSE_URL``, read in one place: which engine holds the warehouse, and where.

The settings validate it with :func:`parse_warehouse_url`, the loader and the dashboard connect with what it
returns, so a URL one of them accepts is never one another misreads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import urlparse

Engine = Literal["duckdb", "postgresql", "redshift"]
ENGINES: tuple[Engine, ...] = ("duckdb", "postgresql", "redshift")
FORMS = "duckdb:///relative.duckdb, duckdb:////absolute.duckdb, postgresql://user@host:port/db or redshift://…"


class WarehouseUrl(NamedTuple):
    engine: Engine
    url: str
    """The URL in the form its client library takes (``postgresql://…`` without a driver suffix)."""

    @property
    def duckdb_file(self) -> Path:
        """The file of a ``duckdb:///…`` URL, read as SQLAlchemy reads ``sqlite:///…``: ``duckdb:///city.duckdb``
        is relative to the working directory, ``duckdb:////srv/city.duckdb`` (four slashes) is absolute."""
        return Path(urlparse(self.url).path[1:])

    @property
    def redacted(self) -> str:
        return redact(self.url)

    @property
    def libpq_url(self) -> str:
        """The URL a PostgreSQL client connects with: Redshift speaks PostgreSQL's protocol, over TLS unless the
        URL says otherwise (``?sslmode=…``)."""
        if self.engine != "redshift":
            return self.url
        url = self.url.replace("redshift://", "postgresql://", 1)
        return url if "sslmode=" in url else f"{url}{'&' if '?' in url else '?'}sslmode=require"


def parse_warehouse_url(url: str) -> WarehouseUrl:
    """The engine and client URL of a warehouse URL (``postgresql+psycopg://`` is ``postgresql``); ValueError
    naming the accepted forms otherwise."""
    parsed = urlparse(url)
    engine = parsed.scheme.split("+", 1)[0]
    if engine not in ENGINES:
        raise ValueError(f"use {FORMS}")
    client_url = url.replace(f"{parsed.scheme}://", f"{engine}://", 1)
    return WarehouseUrl(engine, client_url)  # type: ignore[arg-type]


def redact(url: str) -> str:
    """The URL with its password, if any, replaced by ``***``."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
