"""Artifact store over ``file://`` folders and ``s3://`` buckets (boto3), one interface.

Keys are ``/``-separated paths under the store's root URI. ``put_bytes`` is atomic for a
reader: a file is written to a temporary name and renamed into place; an S3 ``PutObject``
is atomic by itself. Datasets publish with a manifest written last (see ``publish``), so a
reader that goes through the manifest never sees a half-written partition.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse


class ArtifactNotFound(FileNotFoundError):
    """The key does not exist in the store."""


class StoreURIError(ValueError):
    """An artifact URI that would send data somewhere other than what it seems to name."""


class KeyOutsideStore(StoreURIError):
    """A key (a dataset name, a day) that would step out of the store's root."""


class StoreUnavailable(RuntimeError):
    """The object store cannot be reached or refuses us: credentials, endpoint, bucket."""


# Characters a path keeps as they are in a URI; '#', '?', '%' and spaces are escaped.
URI_SAFE = "/=:@+,;~!$&'()*"


def file_uri(path: str | Path) -> str:
    """The ``file://`` URI of the absolute local folder ``path``, percent-encoded so that a
    ``#``, ``?`` or ``%`` in a folder name stays part of the path.

    >>> file_uri("/data/a#b?c%41")
    'file:///data/a%23b%3Fc%2541'
    """
    return "file://" + quote(str(path), safe=URI_SAFE)


def local_root(root_uri: str) -> Path:
    """The local folder a ``file://`` URI names. Only an absolute path is accepted: in
    ``file://var/artifacts`` "var" is the URI's host, and the folder it names is
    ``/artifacts`` at the filesystem root, so a host, a relative path, a ``..`` step, a query
    and a fragment are refused with the fix. Percent-escapes are decoded (see :func:`file_uri`).

    >>> str(local_root("file:///srv/mspa/artifacts"))
    '/srv/mspa/artifacts'
    >>> local_root("file://var/artifacts")
    Traceback (most recent call last):
    ...
    mspa_tasks.artifacts.StoreURIError: artifact URI 'file://var/artifacts' names the host 'var', so its files would land in '/artifacts'; write an absolute path with three slashes: file:///<absolute folder> (the local default is file://{home}/artifacts, under MSPA_HOME)
    """
    parsed = urlparse(root_uri)
    if parsed.scheme != "file":
        raise StoreURIError(f"artifact URI {root_uri!r} is not a file:// URI")
    fix = ("write an absolute path with three slashes: file:///<absolute folder> (the local "
           "default is file://{home}/artifacts, under MSPA_HOME)")
    if parsed.netloc not in ("", "localhost"):
        raise StoreURIError(f"artifact URI {root_uri!r} names the host {parsed.netloc!r}, so "
                            f"its files would land in {unquote(parsed.path) or '/'!r}; {fix}")
    if parsed.query or parsed.fragment or root_uri.endswith(("?", "#")):
        raise StoreURIError(f"artifact URI {root_uri!r} has a query or fragment ('?' or '#' "
                            f"ends the path in a URI); percent-encode them (%3F, %23)")
    path = unquote(parsed.path)
    if not path.startswith("/"):
        raise StoreURIError(f"artifact URI {root_uri!r} has the relative path {path!r}; {fix}")
    if ".." in path.split("/"):
        raise StoreURIError(f"artifact URI {root_uri!r} steps out with '..'; {fix}")
    return Path(path)


class ArtifactStore:
    """Base class; use :func:`open_store` to get the right implementation for a URI."""

    root_uri: str

    def uri(self, key: str) -> str:
        return f"{self.root_uri.rstrip('/')}/{key.lstrip('/')}"

    def put_bytes(self, key: str, data: bytes) -> str:
        raise NotImplementedError

    def get_bytes(self, key: str) -> bytes:
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix`` (recursive), sorted."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def put_text(self, key: str, text: str) -> str:
        return self.put_bytes(key, text.encode("utf-8"))

    def get_text(self, key: str) -> str:
        return self.get_bytes(key).decode("utf-8")


class LocalStore(ArtifactStore):
    def __init__(self, root_uri: str) -> None:
        self.root = local_root(root_uri)
        if self.root.exists() and not self.root.is_dir():
            raise StoreURIError(f"artifact URI {root_uri!r} names {str(self.root)!r}, which is "
                                "a file, not a folder; point it at a folder")
        self.root_uri = root_uri.rstrip("/")

    def uri(self, key: str) -> str:
        return f"{self.root_uri}/{quote(key.lstrip('/'), safe=URI_SAFE)}"

    def _path(self, key: str) -> Path:
        path = (self.root / key.lstrip("/")).resolve()
        if self.root.resolve() not in path.parents and path != self.root.resolve():
            raise KeyOutsideStore(f"key {key!r} escapes the store root {self.root}")
        return path

    def put_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactNotFound(self.uri(key)) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return []
        files: Iterator[Path] = base.rglob("*") if base.is_dir() else iter([base])
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in files
            if p.is_file() and not p.name.endswith(".tmp")
        )

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store(ArtifactStore):
    def __init__(self, root_uri: str, client: Any | None = None) -> None:
        parsed = urlparse(root_uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"S3Store needs an s3://bucket/prefix URI, got {root_uri!r}")
        self.root_uri = root_uri.rstrip("/")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        if client is None:
            import boto3  # credentials from boto3's default chain (a pod's role, env)
            from botocore.exceptions import BotoCoreError

            try:
                client = boto3.client("s3")
            except BotoCoreError as exc:  # a named profile that does not exist, no region
                raise StoreUnavailable(f"{root_uri}: no S3 client ({exc}); fix the AWS "
                                       "settings of this environment") from None
        self.client = client

    def _key(self, key: str) -> str:
        key = key.lstrip("/")
        if ".." in key.split("/"):
            raise KeyOutsideStore(f"key {key!r} escapes the store root {self.root_uri}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, method: str, **kwargs: Any) -> Any:
        """A client call whose failure an operator can fix (no credentials, a dead endpoint,
        a missing bucket, access denied) raised as one :class:`StoreUnavailable` line."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        try:
            return getattr(self.client, method)(**kwargs)
        except NoCredentialsError:
            raise StoreUnavailable(
                f"{self.root_uri}: no AWS credentials found; set them in the Airflow connection "
                "(artifacts_conn_id) or the AWS_* environment variables") from None
        except EndpointConnectionError as exc:
            raise StoreUnavailable(
                f"{self.root_uri}: the S3 endpoint cannot be reached ({exc}); check the "
                "connection's endpoint_url and the network") from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise
            raise StoreUnavailable(f"{self.root_uri}: S3 refused {method} ({code}: "
                                   f"{exc.response.get('Error', {}).get('Message', '')}); "
                                   "check the bucket and the connection's rights") from None
        except BotoCoreError as exc:
            raise StoreUnavailable(f"{self.root_uri}: S3 {method} failed ({exc})") from None

    def put_bytes(self, key: str, data: bytes) -> str:
        self._call("put_object", Bucket=self.bucket, Key=self._key(key), Body=data)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self._call("get_object", Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:  # NoSuchKey (the others are StoreUnavailable)
            raise ArtifactNotFound(self.uri(key)) from exc
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._call("head_object", Bucket=self.bucket, Key=self._key(key))
        except ClientError:  # 404 (the others are StoreUnavailable)
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        full = self._key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        strip = f"{self.prefix}/" if self.prefix else ""
        keys = []
        token: dict[str, str] = {}
        while True:
            page = self._call("list_objects_v2", Bucket=self.bucket, Prefix=full, **token)
            keys.extend(obj["Key"][len(strip):] for obj in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return sorted(keys)
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def delete(self, key: str) -> None:
        self._call("delete_object", Bucket=self.bucket, Key=self._key(key))


def open_store(root_uri: str, s3_client: Any | None = None) -> ArtifactStore:
    """The store for ``root_uri``; ``s3_client`` is a boto3 S3 client (e.g. from an Airflow
    AWS connection); without one boto3's default credential chain is used."""
    scheme = urlparse(root_uri).scheme
    if scheme == "file":
        return LocalStore(root_uri)
    if scheme == "s3":
        return S3Store(root_uri, client=s3_client)
    raise ValueError(
        f"artifact URI {root_uri!r} has scheme {scheme!r}; supported: file://, s3://"
    )
