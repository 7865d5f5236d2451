"""Where the lake's objects live: a local directory or an S3 prefix, behind the few operations that the stream's
commit protocol (:mod:`spark_streaming.lake`) and the asset graph's publication of hours need.

Keys are POSIX paths relative to the lake root (``raw/vehicle_data/event_date=…/part-b….parquet``). The one
operation that carries the protocol's guarantee is :meth:`Storage.publish_file`: the target appears
complete in a single step. On a local file system that is a rename; on S3 it is a server-side copy (an object
becomes visible only once whole) followed by the deletion of the staged object. Every object written to S3
carries server-side encryption.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

import pyarrow as pa

from smartcity.atomic import write_json_atomically
from smartcity.errors import PlatformError
from smartcity.settings import Settings


class StoredFile(NamedTuple):
    key: str
    size: int


class Storage(ABC):
    """The lake root, addressed by relative keys."""

    @abstractmethod
    def spark_uri(self, key: str) -> str:
        """The URI under which Spark reads or writes ``key``."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """The URI under which other readers (DuckDB, pyarrow, people) find ``key``: a path or ``s3://…``."""

    @abstractmethod
    def list_objects(self, prefix: str, suffix: str = "") -> list[StoredFile]:
        """The files under ``prefix`` (recursively) whose key ends in ``suffix``, with their sizes, sorted by key."""

    def list_files(self, prefix: str, suffix: str = "") -> list[str]:
        """Keys of the files under ``prefix`` (recursively) ending in ``suffix``, sorted."""
        return [stored.key for stored in self.list_objects(prefix, suffix)]

    @abstractmethod
    def publish_file(self, source: str, target: str) -> None:
        """Move ``source`` to ``target`` so that ``target`` appears complete in one step."""

    @abstractmethod
    def put_file(self, local_file: Path, key: str) -> None:
        """Move a file of this machine's file system to ``key`` (it appears whole)."""

    @abstractmethod
    def delete(self, keys: Iterable[str]) -> None:
        """Delete the files (missing ones are fine)."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Delete everything under ``prefix``."""

    @abstractmethod
    def write_json(self, key: str, value: object) -> None:
        """Write a small JSON document that readers see whole or not at all."""

    @abstractmethod
    def read_json(self, key: str) -> Any | None:
        """The JSON document at ``key``, or None when there is none."""

    @abstractmethod
    def open_input(self, key: str) -> str | pa.NativeFile:
        """Something ``pyarrow.parquet.ParquetFile`` can open."""


class LocalStorage(Storage):
    """A lake in a local directory; renames are atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def path(self, key: str) -> Path:
        return self.root / key

    def spark_uri(self, key: str) -> str:
        return str(self.path(key))

    def uri(self, key: str) -> str:
        return str(self.path(key))

    def list_objects(self, prefix: str, suffix: str = "") -> list[StoredFile]:
        base = self.path(prefix)
        if not base.exists():
            return []
        listed = (_stat(self.root, file) for file in base.rglob(f"*{suffix}"))
        return sorted(stored for stored in listed if stored is not None)

    def publish_file(self, source: str, target: str) -> None:
        self.path(target).parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(source), self.path(target))

    def put_file(self, local_file: Path, key: str) -> None:
        self.path(key).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(local_file, self.path(key))

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)

    def write_json(self, key: str, value: object) -> None:
        write_json_atomically(self.path(key), value)

    def read_json(self, key: str) -> Any | None:
        path = self.path(key)
        return json.loads(path.read_text()) if path.exists() else None

    def open_input(self, key: str) -> str:
        return str(self.path(key))


class S3Storage(Storage):
    """A lake under ``s3://bucket/prefix``; every PUT and copy asks for server-side encryption."""

    def __init__(self, bucket: str, prefix: str, settings: Settings) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.settings = settings

    def __repr__(self) -> str:
        return f"S3Storage('s3://{self.bucket}/{self.prefix}')"

    @cached_property
    def client(self) -> Any:
        import boto3

        return boto3.client("s3", **self.settings.s3_client_options)

    @property
    def encryption(self) -> dict[str, str]:
        """Request parameters for server-side encryption: SSE-S3, or SSE-KMS with the configured key."""
        if self.settings.s3_kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.settings.s3_kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    def key(self, key: str) -> str:
        return posixpath.join(self.prefix, key) if self.prefix else key

    def relative(self, object_key: str) -> str:
        return object_key[len(self.prefix) + 1 :] if self.prefix else object_key

    def spark_uri(self, key: str) -> str:
        return f"s3a://{self.bucket}/{self.key(key)}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.key(key)}"

    def list_objects(self, prefix: str, suffix: str = "") -> list[StoredFile]:
        directory = self.key(prefix).rstrip("/")
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=f"{directory}/" if directory else "",  # a lake at the bucket's root
        )
        items = [item for page in pages for item in page.get("Contents", [])]
        return sorted(StoredFile(self.relative(item["Key"]), item["Size"]) for item in items
                      if item["Key"].endswith(suffix))  # fmt: skip

    def publish_file(self, source: str, target: str) -> None:
        self.client.copy(
            {"Bucket": self.bucket, "Key": self.key(source)}, self.bucket, self.key(target), ExtraArgs=self.encryption
        )
        self.client.delete_object(Bucket=self.bucket, Key=self.key(source))

    def put_file(self, local_file: Path, key: str) -> None:
        self.client.upload_file(str(local_file), self.bucket, self.key(key), ExtraArgs=self.encryption)
        local_file.unlink()

    def delete(self, keys: Iterable[str]) -> None:
        objects = [{"Key": self.key(key)} for key in keys]
        for start in range(0, len(objects), 1000):  # the API's limit per request
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": objects[start : start + 1000], "Quiet": True}
            )
            if response.get("Errors"):
                raise PlatformError(f"could not delete from s3://{self.bucket}: {response['Errors'][:3]}")

    def delete_prefix(self, prefix: str) -> None:
        self.delete(self.list_files(prefix))

    def write_json(self, key: str, value: object) -> None:
        body = json.dumps(value, sort_keys=True).encode()
        self.client.put_object(Bucket=self.bucket, Key=self.key(key), Body=body, **self.encryption)

    def read_json(self, key: str) -> Any | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return json.loads(body)

    def open_input(self, key: str) -> pa.NativeFile:
        return pa.BufferReader(self.client.get_object(Bucket=self.bucket, Key=self.key(key))["Body"].read())


def _stat(root: Path, file: Path) -> StoredFile | None:
    """The file with its size, or None for a directory or a file that vanished since it was listed (a compaction
    swapped its hour away)."""
    try:
        if file.is_file():
            return StoredFile(str(file.relative_to(root)), file.stat().st_size)
    except FileNotFoundError:
        pass
    return None


def storage_for(uri: str, settings: Settings) -> Storage:
    """The storage of a lake URI: a local path, ``file://…``, or ``s3://``/``s3a://bucket/prefix``."""
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a"):
        return S3Storage(parsed.netloc, parsed.path, settings)
    return LocalStorage(local_root(uri))


def local_root(uri: str) -> Path:
    """The local directory of a URI; Spark's checkpoint must be on a file system with atomic renames."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else uri).resolve()
    raise PlatformError(
        f"{uri!r} is not a local path. The stream's checkpoint needs a file system with atomic renames "
        "(a local or mounted directory); the lake itself may be on S3 (SMARTCITY_LAKE_URI=s3://bucket/prefix)."
    )
