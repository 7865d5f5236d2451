"""Where the lake's objects live: a local directory or an S3 prefix, behind the few operations that the stream's
commit protocol (:mod:`spark_streaming.lake`) and the asset graph's publication of hours need.

Keys are POSIX paths relative to the lake root (``raw/vehicle_data/event_date=…/part-b….parquet``). The one
operation that carries the protocol's guarantee is :meth:`Storage.publish_file`: the target appears
complete in a single step. On a local file system that is a rename; on S3 it is a server-side copy (an object
becomes visible only once whole) followed by the deletion of the staged object. Every object written to S3
carries server-side encryption.
"""

from __future__ import annotations

import io
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


class InventoryItem(NamedTuple):
    """An object as a cost report sees it: its key, size and S3 storage class."""

    key: str
    size: int
    storage_class: str


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

    def inventory(self, prefix: str = "") -> list[InventoryItem]:
        """Every object under ``prefix`` with its storage class (STANDARD unless the store keeps others)."""
        return [InventoryItem(stored.key, stored.size, "STANDARD") for stored in self.list_objects(prefix)]

    def list_files(self, prefix: str, suffix: str = "") -> list[str]:
        """Keys of the files under ``prefix`` (recursively) ending in ``suffix``, sorted."""
        return [stored.key for stored in self.list_objects(prefix, suffix)]

    @abstractmethod
    def list_directories(self, prefix: str) -> list[str]:
        """Keys of the directories (S3: common prefixes) right under ``prefix``, without a trailing slash."""

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

    def list_directories(self, prefix: str) -> list[str]:
        base = self.path(prefix)
        if not base.is_dir():
            return []
        return sorted(str(child.relative_to(self.root)) for child in base.iterdir() if child.is_dir())

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


SINGLE_REQUEST_LIMIT = 5 * 2**30
"""Copies and uploads up to S3's single-request limit go in one request: a multipart upload's completion does
not carry the encryption header that bucket policies demand of a put (SeaweedFS refuses it)."""


class S3Storage(Storage):
    """A lake under ``s3://bucket/prefix``; every PUT and copy asks for server-side encryption.

    The client finds its endpoint and credentials the standard way (``AWS_ENDPOINT_URL_S3``, the AWS chain);
    ``endpoint_url`` overrides the endpoint. A ``client`` made elsewhere (dagster-aws's ``S3Resource``) is used
    as it is.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str,
        region: str,
        kms_key_id: str | None = None,
        endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.region = region
        self.kms_key_id = kms_key_id
        self.endpoint_url = endpoint_url
        if client is not None:
            self.__dict__["client"] = client  # fills the cached property

    def __repr__(self) -> str:
        return f"S3Storage('s3://{self.bucket}/{self.prefix}')"

    @cached_property
    def client(self) -> Any:
        import boto3

        return boto3.client("s3", region_name=self.region, endpoint_url=self.endpoint_url)

    @cached_property
    def _transfer(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(multipart_threshold=SINGLE_REQUEST_LIMIT)

    @property
    def encryption(self) -> dict[str, str]:
        """Request parameters for server-side encryption: SSE-S3, or SSE-KMS with the configured key."""
        if self.kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    def key(self, key: str) -> str:
        return posixpath.join(self.prefix, key) if self.prefix else key

    def relative(self, object_key: str) -> str:
        return object_key[len(self.prefix) + 1 :] if self.prefix else object_key

    def spark_uri(self, key: str) -> str:
        return f"s3a://{self.bucket}/{self.key(key)}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.key(key)}"

    def _listed(self, prefix: str) -> list[dict[str, Any]]:
        """The listing of every object under ``prefix``, page by page (1000 keys a request)."""
        directory = self.key(prefix).rstrip("/")
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket,
            Prefix=f"{directory}/" if directory else "",  # a lake at the bucket's root
        )
        return [item for page in pages for item in page.get("Contents", [])]

    def list_objects(self, prefix: str, suffix: str = "") -> list[StoredFile]:
        return sorted(StoredFile(self.relative(item["Key"]), item["Size"]) for item in self._listed(prefix)
                      if item["Key"].endswith(suffix))  # fmt: skip

    def inventory(self, prefix: str = "") -> list[InventoryItem]:
        return sorted(InventoryItem(self.relative(item["Key"]), item["Size"], item.get("StorageClass", "STANDARD"))
                      for item in self._listed(prefix))  # fmt: skip

    def list_directories(self, prefix: str) -> list[str]:
        directory = self.key(prefix).rstrip("/")
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{directory}/" if directory else "", Delimiter="/"
        )
        found = [common["Prefix"] for page in pages for common in page.get("CommonPrefixes", [])]
        return sorted(self.relative(found_prefix.rstrip("/")) for found_prefix in found)

    def publish_file(self, source: str, target: str) -> None:
        self.client.copy(
            {"Bucket": self.bucket, "Key": self.key(source)},
            self.bucket,
            self.key(target),
            ExtraArgs=self.encryption,
            Config=self._transfer,
        )
        self.client.delete_object(Bucket=self.bucket, Key=self.key(source))

    def put_file(self, local_file: Path, key: str) -> None:
        self.client.upload_file(
            str(local_file), self.bucket, self.key(key), ExtraArgs=self.encryption, Config=self._transfer
        )
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
        """A file that reads ranges on demand: a Parquet footer (rows, schema) costs two small requests."""
        return pa.PythonFile(_RangeReader(self.client, self.bucket, self.key(key)), mode="r")


class _RangeReader(io.RawIOBase):
    """A seekable, read-only view of one S3 object, each read a ranged GET."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.size = client.head_object(Bucket=bucket, Key=key)["ContentLength"]
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        length = min(len(buffer), self.size - self.position)
        if length <= 0:
            return 0
        byte_range = f"bytes={self.position}-{self.position + length - 1}"
        data = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=byte_range)["Body"].read()
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


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
        return S3Storage(parsed.netloc, parsed.path, settings.aws_region, settings.s3_kms_key_id,
                         settings.s3_endpoint_url)  # fmt: skip
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
