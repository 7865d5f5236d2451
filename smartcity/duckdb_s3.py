"""DuckDB reading ``s3://`` URIs with the same endpoint, credentials and certificate authority as boto3.

The httpfs extension comes from the ``duckdb-ext-httpfs`` package (DuckDB 1.4 cannot download it here); the
credentials are resolved from the standard AWS chain when the connection is made and live in its memory only.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb

from smartcity.settings import s3_endpoint


def httpfs_extension() -> Path:
    files = importlib.metadata.files("duckdb-ext-httpfs") or []
    return Path(next(file for file in files if file.name == "httpfs.duckdb_extension").locate())


def enable_s3(connection: duckdb.DuckDBPyConnection, region: str, endpoint_url: str | None = None) -> None:
    """Let ``connection`` read ``s3://…``: httpfs, a secret from the AWS chain, a private CA from AWS_CA_BUNDLE."""
    import boto3

    connection.execute(f"LOAD '{httpfs_extension()}'")
    credentials = boto3.Session().get_credentials().get_frozen_credentials()
    secret: dict[str, Any] = {"key": credentials.access_key, "secret": credentials.secret_key,
                              "token": credentials.token or "", "region": region}  # fmt: skip
    options = "TYPE s3, KEY_ID $key, SECRET $secret, SESSION_TOKEN $token, REGION $region"
    endpoint = urlparse(s3_endpoint(endpoint_url) or "")
    if endpoint.netloc:
        options += ", ENDPOINT $endpoint, URL_STYLE 'path', USE_SSL $ssl"
        secret |= {"endpoint": endpoint.netloc, "ssl": endpoint.scheme == "https"}
    connection.execute(f"CREATE OR REPLACE SECRET lake ({options})", secret)
    if bundle := os.environ.get("AWS_CA_BUNDLE"):
        connection.execute("SET ca_cert_file = $bundle", {"bundle": bundle})
