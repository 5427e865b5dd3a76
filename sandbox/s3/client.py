"""The S3 client side: verified uploads into the GDC layout and prefix-safe artifact downloads."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from sandbox.errors import Conflict, NotFound, SandboxError, UsageError
from sandbox.progress import ProgressBar
from sandbox.uri import ArtifactURI

PART_SIZE = 8 * 1024 * 1024
TRANSFER = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=4)


class StorageError(SandboxError):
    """S3 answered with an error, or could not be reached."""

    code = "s3.error"
    http_status = 502


@dataclass(frozen=True)
class UploadResult:
    uri: ArtifactURI
    keys: list[str]
    total_bytes: int


def expected_etag(path: Path, part_size: int = PART_SIZE) -> str:
    """The ETag S3 computes: the MD5 for single-part uploads, MD5-of-part-MD5s plus ``-N`` for multipart."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if size < part_size:
            return hashlib.md5(handle.read(), usedforsecurity=False).hexdigest()
        digests = []
        while chunk := handle.read(part_size):
            digests.append(hashlib.md5(chunk, usedforsecurity=False).digest())
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def safe_relative(key: str, prefix: str) -> PurePosixPath | None:
    """The key's path below ``prefix``, or None for folder markers and names that would escape the folder."""
    if not key.startswith(prefix) or key.endswith("/"):
        return None
    rel = PurePosixPath(key[len(prefix) :])
    if not rel.parts or rel.is_absolute() or any(part in ("..", "") for part in rel.parts):
        return None
    return rel


class Store:
    """An S3 endpoint reached with one project's keys."""

    def __init__(self, endpoint_url: str, access_key: str, secret_key: str, region: str = "us-east-1") -> None:
        self.endpoint_url = endpoint_url
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    @contextmanager
    def _s3_errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except botocore.exceptions.EndpointConnectionError as exc:
            raise StorageError(
                f"cannot reach the S3 endpoint {self.endpoint_url} while {what}",
                code="s3.unreachable",
                hint="is the sandbox up? `gdc-sandbox status` shows the S3 server's state",
            ) from exc
        except botocore.exceptions.ClientError as exc:
            err = exc.response.get("Error", {})
            code = err.get("Code", "Unknown")
            raise StorageError(
                f"S3 refused {what}: {code}: {err.get('Message', '')}".rstrip(": "),
                code=f"s3.{code}",
                hint=_s3_hint(code, str(err.get("BucketName") or "BUCKET")),
            ) from exc

    def ensure_bucket(self, bucket: str) -> bool:
        """Create ``bucket`` unless it exists; True if it was created."""
        with self._s3_errors(f"creating bucket {bucket}"):
            try:
                self.client.head_bucket(Bucket=bucket)
                return False
            except botocore.exceptions.ClientError:
                self.client.create_bucket(Bucket=bucket)
                return True

    def bucket_exists(self, bucket: str) -> bool:
        with self._s3_errors(f"looking up bucket {bucket}"):
            try:
                self.client.head_bucket(Bucket=bucket)
                return True
            except botocore.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
                    return False
                raise

    def list_artifact(self, uri: ArtifactURI) -> list[dict[str, Any]]:
        """Objects under the version folder: prefix-safe (``m/1/`` never matches ``m/10/``), folder markers skipped."""
        objects = []
        with self._s3_errors(f"listing {uri}"):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=uri.bucket, Prefix=uri.prefix):
                for obj in page.get("Contents", []):
                    if safe_relative(obj["Key"], uri.prefix) is not None:
                        objects.append(obj)
        return objects

    def delete_artifact(self, uri: ArtifactURI) -> int:
        """Delete the objects of one version folder (prefix-safe); returns how many there were."""
        objects = self.list_artifact(uri)
        for start in range(0, len(objects), 1000):
            batch = [{"Key": obj["Key"]} for obj in objects[start : start + 1000]]
            with self._s3_errors(f"deleting {uri}"):
                self.client.delete_objects(Bucket=uri.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(objects)

    def list_prefix(self, uri: str) -> list[dict[str, Any]]:
        """Buckets (for ``s3://``) or objects under ``s3://BUCKET/PREFIX`` as {key, size, etag}."""
        if not uri.startswith("s3://"):
            raise UsageError(f"{uri!r} is not an s3:// URI", code="uri.invalid", hint="e.g. s3://models/my-model/")
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            with self._s3_errors("listing buckets"):
                return [{"key": b["Name"] + "/", "size": 0, "etag": ""} for b in self.client.list_buckets()["Buckets"]]
        objects = []
        with self._s3_errors(f"listing {uri}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    objects.append({"key": obj["Key"], "size": obj["Size"], "etag": obj["ETag"].strip('"')})
        return objects

    def upload(self, local: Path, uri: ArtifactURI, *, overwrite: bool = False, progress: bool = True) -> UploadResult:
        """Upload a folder (its contents become the version folder) or one file, then verify every ETag."""
        files = _files_to_upload(local)
        if not overwrite:
            existing = self.list_artifact(uri)
            if existing:
                raise Conflict(
                    f"{uri} already holds {len(existing)} object(s); refusing to overwrite a model version",
                    code="upload.version-exists",
                    hint="upload to a new MODEL_VERSION_ID, or pass --overwrite to replace this one",
                )
        total = sum(path.stat().st_size for _, path in files)
        bar = ProgressBar(total, f"upload {uri}", enabled=progress)
        keys = []
        for rel, path in files:
            key = uri.prefix + rel
            with self._s3_errors(f"uploading {path} to s3://{uri.bucket}/{key}"):
                self.client.upload_file(
                    str(path),
                    uri.bucket,
                    key,
                    Config=TRANSFER,
                    Callback=bar,
                    ExtraArgs={"Metadata": {"sha256": sha256_of(path)}},
                )
            keys.append(key)
        bar.finish()
        self._verify(uri, files)
        return UploadResult(uri, keys, total)

    def _verify(self, uri: ArtifactURI, files: list[tuple[str, Path]]) -> None:
        for rel, path in files:
            key = uri.prefix + rel
            with self._s3_errors(f"verifying s3://{uri.bucket}/{key}"):
                head = self.client.head_object(Bucket=uri.bucket, Key=key)
            remote = head["ETag"].strip('"')
            local = expected_etag(path)
            if remote != local or head["ContentLength"] != path.stat().st_size:
                raise StorageError(
                    f"checksum mismatch after upload for s3://{uri.bucket}/{key}: local {local}, stored {remote}",
                    code="upload.checksum-mismatch",
                    hint="the object in the bucket is not the file you uploaded; upload again with --overwrite",
                )

    def download(self, uri: ArtifactURI, dest: Path) -> list[Path]:
        """Materialise the version folder under ``dest``; raise NotFound if the prefix holds nothing."""
        objects = self.list_artifact(uri)
        if not objects:
            raise NotFound(
                f"no objects under {uri}",
                code="artifact.not-found",
                hint=f"object keys are case-sensitive; `gdc-sandbox ls s3://{uri.bucket}/{uri.model_id}/` "
                "lists what is there",
            )
        written = []
        for obj in objects:
            rel = safe_relative(obj["Key"], uri.prefix)
            assert rel is not None
            target = dest.joinpath(*rel.parts)
            if target.exists() and target.is_dir():
                raise StorageError(
                    f"s3://{uri.bucket}/{obj['Key']} collides with a folder of the same name",
                    code="artifact.key-collision",
                    hint="upload the model again to a new MODEL_VERSION_ID from a folder without the clash "
                    "(`gdc-sandbox upload SRC s3://BUCKET/MODEL_ID/NEW_VERSION`)",
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            with self._s3_errors(f"downloading s3://{uri.bucket}/{obj['Key']}"):
                self.client.download_file(uri.bucket, obj["Key"], str(target), Config=TRANSFER)
            written.append(target)
        return written


def _files_to_upload(local: Path) -> list[tuple[str, Path]]:
    if not local.exists():
        raise UsageError(f"{local} does not exist", code="upload.no-such-path", hint="give a model folder or file")
    if local.is_file():
        return [(local.name, local)]
    files = []
    for root, dirs, names in os.walk(local):
        dirs.sort()
        for name in sorted(names):
            path = Path(root, name)
            if path.is_file():
                files.append((path.relative_to(local).as_posix(), path))
    if not files:
        raise UsageError(f"{local} holds no files", code="upload.empty", hint="export the model into this folder first")
    return files


def _s3_hint(code: str, bucket: str) -> str:
    keys = "use the project's keys from $GDC_SANDBOX_HOME/credentials.env (default .sandbox/credentials.env)"
    return {
        "NoSuchBucket": f"create it with `gdc-sandbox mb s3://{bucket}`, or check the name: `gdc-sandbox ls s3://` "
        "lists the buckets",
        "AccessDenied": f"the keys in use may not access this bucket; {keys}",
        "InvalidAccessKeyId": keys,
        "SignatureDoesNotMatch": f"the secret key is wrong; {keys}",
    }.get(code, "")
