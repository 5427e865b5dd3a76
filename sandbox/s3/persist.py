"""Write-through persistence for the moto S3 endpoint: bucket contents survive restarts and ``kill -9``.

:class:`PersistentS3` wraps moto's WSGI app. At construction it loads ``data_dir`` into moto's in-process
S3 backend. After each successful mutating request (PUT/DELETE bucket, PUT object or copy, tagging,
CompleteMultipartUpload, DELETE object, ``POST ?delete``, ``POST /moto-api/reset``) it reads the resulting
state back from the backend and writes it to disk durably *before* the response reaches the client. GET and
HEAD go straight to moto.

On-disk layout (format 1)::

    DIR/buckets/<bucket>/bucket.json            {"name", "region", "account_id", "partition"}; its presence
                                                commits the bucket
    DIR/buckets/<bucket>/objects/<sha256(key)>  one file per object: a JSON header line, then the raw bytes

The header holds the key, size, ETag (multipart ``-N`` ETags included), metadata (Content-Type,
``x-amz-meta-*`` ...), tags, storage class, checksum and last-modified time. Each file is written to a temp
name, fsynced, renamed over the old one and the directory fsynced, so an object on disk is always either
the old or the new version in full. Every write is serialized by one lock and re-reads moto's state, so the
disk ends in the state of the last change; a write that cannot be persisted answers 500 InternalError.
Not kept: in-progress multipart uploads, object versions (only the latest), ACLs, bucket settings
(versioning, policy, CORS ...) and browser POST uploads; requests must be path-style (``/bucket/key``). A
restored multipart object keeps its bytes and ``-N`` ETag but not its part layout (``GET ?partNumber=``).

Example::

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    app = PersistentS3(DomainDispatcherApplication(create_backend_app), "/var/lib/sandbox/s3")
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, unquote
from xml.etree import ElementTree

from sandbox.s3.request import StartResponse, raw_path, s3_error

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
_MAGIC = b"s3persist/1\n"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAFE_BUCKET_DIR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")



def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, chunks: Iterable[bytes]) -> int:
    """Write ``chunks`` to ``path`` via temp file + fsync + rename + directory fsync; return the byte count."""
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
    written = 0
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                written += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return written


def _key_chunks(key: Any) -> Iterator[bytes]:
    """Yield a moto ``FakeKey``'s bytes in chunks, never as one copy (moto 5.2 ``_value_buffer``)."""
    buf, lock = getattr(key, "_value_buffer", None), getattr(key, "lock", None)
    if buf is None or lock is None:  # pragma: no cover - other moto versions
        yield key.value
        return
    pos = 0
    while True:
        with lock:
            buf.seek(pos)
            chunk = buf.read(CHUNK)
        if not chunk:
            return
        pos += len(chunk)
        yield chunk


def _load_key_value(key: Any, f: IO[bytes], size: int) -> None:
    """Stream ``size`` bytes from ``f`` into a freshly created moto key."""
    buf = getattr(key, "_value_buffer", None)
    if buf is None:  # pragma: no cover - other moto versions
        key.value = f.read(size)
        return
    buf.seek(0)
    buf.truncate()
    remaining = size
    while remaining:
        chunk = f.read(min(CHUNK, remaining))
        if not chunk:
            raise ValueError(f"truncated object data: {remaining} bytes missing")
        buf.write(chunk)
        remaining -= len(chunk)
    key.contentsize = size


class DiskStore:
    """The files under ``data_dir``; knows nothing about HTTP."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.root = Path(data_dir)
        self.buckets = self.root / "buckets"
        self.buckets.mkdir(parents=True, exist_ok=True)

    def bucket_dir(self, bucket: str) -> Path:
        if _SAFE_BUCKET_DIR.fullmatch(bucket):
            return self.buckets / bucket
        return self.buckets / ("_" + hashlib.sha256(bucket.encode()).hexdigest())

    def object_path(self, bucket: str, key: str) -> Path:
        return self.bucket_dir(bucket) / "objects" / hashlib.sha256(key.encode("utf-8")).hexdigest()

    def has_bucket(self, bucket: str) -> bool:
        return (self.bucket_dir(bucket) / "bucket.json").exists()

    def write_bucket(self, record: dict[str, str]) -> None:
        bdir = self.bucket_dir(record["name"])
        (bdir / "objects").mkdir(parents=True, exist_ok=True)
        _fsync_dir(self.buckets)  # bdir itself is fsynced after bucket.json lands in it
        _write_atomic(bdir / "bucket.json", [json.dumps(record).encode()])

    def remove_bucket(self, bucket: str) -> None:
        self.remove_bucket_dir(self.bucket_dir(bucket))

    def remove_bucket_dir(self, bdir: Path) -> None:
        (bdir / "bucket.json").unlink(missing_ok=True)  # the commit point: a folder without it is garbage
        if bdir.exists():
            _fsync_dir(bdir)
            shutil.rmtree(bdir)
        _fsync_dir(self.buckets)

    def write_object(self, bucket: str, header: dict[str, Any], chunks: Iterable[bytes]) -> int:
        line = json.dumps(header, ensure_ascii=True).encode() + b"\n"
        return _write_atomic(self.object_path(bucket, header["key"]), _prepend(_MAGIC + line, chunks))

    def remove_object(self, bucket: str, key: str) -> bool:
        path = self.object_path(bucket, key)
        if not path.exists():
            return False
        path.unlink()
        _fsync_dir(path.parent)
        return True

    def clear(self) -> None:
        for child in list(self.buckets.iterdir()):
            self.remove_bucket_dir(child)


def _prepend(first: bytes, rest: Iterable[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


class PersistentS3:
    """WSGI middleware that mirrors moto's S3 state into ``data_dir`` and restores it at construction."""

    def __init__(self, app: Callable[..., Iterable[bytes]], data_dir: str | os.PathLike[str]) -> None:
        from moto.s3.models import s3_backends

        self.app = app
        self.store = DiskStore(data_dir)
        self._backends = s3_backends
        self._lock = threading.Lock()
        self.restore()

    # -- WSGI ---------------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") in _READS:
            return self.app(environ, start_response)
        return self._mutating(environ, start_response)

    def _mutating(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        captured: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured[:] = [status, headers, exc_info]
            return body.append

        body: list[bytes] = []
        request_body = _buffer_delete_request(environ)
        result = self.app(environ, capture)
        try:
            body.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers, exc_info = captured
        if int(status.split(" ", 1)[0]) < 400:
            try:
                self._persist(environ, request_body, body)
            except Exception:
                log.exception("could not write %s %s to disk", environ["REQUEST_METHOD"], raw_path(environ))
                message = "sandbox could not persist the change to disk; see the server log"
                return s3_error(start_response, environ, "500 Internal Server Error", "InternalError", message)
        start_response(status, headers, exc_info)
        return body

    def _persist(self, environ: dict[str, Any], request_body: bytes, response_body: list[bytes]) -> None:
        method, path = environ["REQUEST_METHOD"], raw_path(environ)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if path.startswith("/moto-api/"):
            if method == "POST" and path.rstrip("/") == "/moto-api/reset":
                with self._lock:
                    self.store.clear()
                log.debug("reset, cleared %s", self.store.root)
            return
        bucket, _, key = unquote(path).lstrip("/").partition("/")
        if not bucket:
            return
        if not key:
            if method == "POST" and "delete" in query:
                for name in sorted(_xml_keys(request_body, b"".join(response_body))):
                    self.sync_object(bucket, name)
            elif method in ("PUT", "DELETE"):
                self.sync_bucket(bucket)
        elif ("uploadId" in query) == (method == "POST"):
            # PUT object/copy/tagging, DELETE object, POST ?uploadId (Complete); not UploadPart, Create or Abort
            self.sync_object(bucket, key)

    # -- backend -> disk ----------------------------------------------------------------------------------
    def _backend_for(self, bucket: str) -> Any:  # an S3Backend, or None if moto has no such bucket
        owner = self._backends.bucket_accounts.get(bucket)
        if owner is None:
            return None
        partition, account_id = owner
        return self._backends[account_id][partition]

    def _bucket_on_disk(self, backend: Any, bucket: str) -> bool:
        """Write ``bucket.json`` if moto has the bucket and the disk does not; return whether moto has it."""
        fake = backend.buckets.get(bucket) if backend is not None else None
        if fake is None:
            return False
        if not self.store.has_bucket(bucket):
            record = {"name": bucket, "region": fake.region_name, "account_id": backend.account_id}
            self.store.write_bucket({**record, "partition": backend.partition})
            log.debug("created bucket %s", bucket)
        return True

    def sync_bucket(self, bucket: str) -> None:
        """Make the disk agree with moto on whether ``bucket`` exists."""
        with self._lock:
            if not self._bucket_on_disk(self._backend_for(bucket), bucket) and self.store.bucket_dir(bucket).exists():
                self.store.remove_bucket(bucket)
                log.debug("deleted bucket %s", bucket)

    def sync_object(self, bucket: str, key: str, attempts: int = 3) -> None:
        """Make the disk agree with moto's current state of ``bucket/key`` (written, or removed)."""
        with self._lock:
            for attempt in range(attempts):
                started = time.perf_counter()
                backend = self._backend_for(bucket)
                if not self._bucket_on_disk(backend, bucket):
                    return  # bucket gone: its DELETE removes the folder
                fake = backend.get_object(bucket, key)
                if fake is None:
                    if self.store.remove_object(bucket, key):
                        log.debug("deleted %s/%s", bucket, key)
                    return
                try:
                    self.store.write_object(bucket, _header(backend, fake), _key_chunks(fake))
                except ValueError:  # the key was disposed (reset) while we read it: read moto's state again
                    if attempt == attempts - 1:
                        raise
                    continue
                ms = (time.perf_counter() - started) * 1000
                log.debug("wrote %s/%s (%d bytes, etag %s) in %.1f ms", bucket, key, fake.size, fake.etag, ms)
                return

    # -- disk -> backend ----------------------------------------------------------------------------------
    def restore(self) -> None:
        started = time.perf_counter()
        n_buckets = n_objects = skipped = 0
        for bdir in sorted(self.store.buckets.iterdir()):
            record_path = bdir / "bucket.json"
            if not record_path.is_file():
                log.warning("removing %s (no bucket.json: an interrupted create or delete)", bdir)
                self.store.remove_bucket_dir(bdir)
                continue
            record = json.loads(record_path.read_text())
            backend = self._backends[record["account_id"]][record["partition"]]
            if record["name"] not in backend.buckets:
                backend.create_bucket(record["name"], record["region"])
            n_buckets += 1
            (bdir / "objects").mkdir(exist_ok=True)
            for path in sorted((bdir / "objects").iterdir()):
                if path.name.startswith(".tmp-"):
                    path.unlink()
                    continue
                try:
                    self._restore_object(backend, record["name"], path)
                except (OSError, ValueError, KeyError) as exc:
                    log.error("skipping unreadable object file %s: %s", path, exc)
                    skipped += 1
                    continue
                n_objects += 1
        seconds = time.perf_counter() - started
        log.info("restored %d objects in %d buckets from %s (%.2f s)", n_objects, n_buckets, self.store.root, seconds)
        if skipped:
            log.error("%d object files could not be read and were left out (see above)", skipped)

    @staticmethod
    def _restore_object(backend: Any, bucket: str, path: Path) -> None:
        with open(path, "rb") as f:
            if f.readline(len(_MAGIC)) != _MAGIC:
                raise ValueError("not an s3persist object file")
            header = json.loads(f.readline(1 << 20))
            if os.fstat(f.fileno()).st_size - f.tell() != header["size"]:
                raise ValueError(f"object file does not hold the {header['size']} bytes its header names")
            key = backend.put_object(
                bucket,
                header["key"],
                b"",
                storage=header.get("storage_class"),
                etag=header["etag"],
                disable_notification=True,
            )
            _load_key_value(key, f, header["size"])
        key.set_metadata(dict(header["metadata"]))
        key.last_modified = datetime.datetime.fromisoformat(header["last_modified"])
        for attr in ("checksum_algorithm", "checksum_value", "checksum_type", "website_redirect_location"):
            if header.get(attr) is not None:
                setattr(key, attr, header[attr])
        if header.get("tags"):
            backend.put_object_tagging(key, header["tags"])


def _header(backend: Any, key: Any) -> dict[str, Any]:
    tags = backend.get_object_tagging(key).get("Tags", [])
    return {
        "key": key.name,
        "size": key.size,
        "etag": key.etag.strip('"'),
        "metadata": dict(key.metadata),
        "last_modified": key.last_modified.isoformat(),
        "storage_class": key.storage_class,
        "checksum_algorithm": key.checksum_algorithm,
        "checksum_value": key.checksum_value,
        "checksum_type": key.checksum_type,
        "website_redirect_location": key.website_redirect_location,
        "tags": {t["Key"]: t["Value"] for t in tags},
    }


def _buffer_delete_request(environ: dict[str, Any]) -> bytes:
    """For ``POST ?delete``, read the request body (and hand moto a copy): in Quiet mode only it names the keys."""
    if environ.get("REQUEST_METHOD") != "POST" or "delete" not in parse_qs(environ.get("QUERY_STRING", ""), True):
        return b""
    length = environ.get("CONTENT_LENGTH") or ""
    data = environ["wsgi.input"].read(int(length)) if length.isdigit() else environ["wsgi.input"].read()
    environ["wsgi.input"] = io.BytesIO(data)
    return bytes(data)


def _xml_keys(*docs: bytes) -> set[str]:
    """Every ``<Key>`` in a DeleteObjects request and its result (syncing a key is idempotent)."""
    keys: set[str] = set()
    for doc in docs:
        if doc.strip():
            root = ElementTree.fromstring(doc)
            keys.update(el.text or "" for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Key")
    return keys
