"""Bucket contents survive SIGTERM and ``kill -9`` of a real S3 server process (real HTTP, boto3)."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig

from tests.s3server.harness import S3Process, snapshot

MB = 1024 * 1024
SMALL = {
    "plain.txt": b"hello",
    "nested/deeper/model/saved_model.pb": os.urandom(70_000),
    "unicode/ümlaut ünd spaces/数据 🚀.bin": b"\x00\x01binary\xff" * 10,
    "empty": b"",
    "with+plus&amp=eq%percent": b"odd characters",
}


def _populate(s3: object, workdir: Path) -> None:
    s3.create_bucket(Bucket="models")
    for key, body in SMALL.items():
        s3.put_object(Bucket="models", Key=key, Body=body)
    s3.put_object(
        Bucket="models",
        Key="meta/object.json",
        Body=b'{"a": 1}',
        ContentType="application/json",
        Metadata={"sha256": hashlib.sha256(b'{"a": 1}').hexdigest(), "owner": "team-ml"},
    )
    big = workdir / "big.bin"
    with open(big, "wb") as f:
        for _ in range(20):
            f.write(os.urandom(MB))
    config = TransferConfig(multipart_threshold=8 * MB, multipart_chunksize=8 * MB)
    s3.upload_file(str(big), "models", "big/model.bin", Config=config, ExtraArgs={"Metadata": {"sha256": "big"}})
    s3.copy_object(Bucket="models", Key="copies/plain.txt", CopySource={"Bucket": "models", "Key": "plain.txt"})
    s3.put_object(Bucket="models", Key="doomed", Body=b"delete me")
    s3.delete_object(Bucket="models", Key="doomed")
    s3.put_object(Bucket="models", Key="overwritten", Body=b"v1")
    s3.put_object(Bucket="models", Key="overwritten", Body=b"version two")
    s3.put_object(Bucket="models", Key="batch/1", Body=b"1")
    s3.put_object(Bucket="models", Key="batch/2", Body=b"2")
    s3.put_object(Bucket="models", Key="batch/ü 3", Body=b"3")
    s3.delete_objects(Bucket="models", Delete={"Objects": [{"Key": "batch/1"}, {"Key": "batch/2"}]})
    s3.delete_objects(Bucket="models", Delete={"Objects": [{"Key": "batch/ü 3"}, {"Key": "never"}], "Quiet": True})
    s3.create_bucket(Bucket="scratch")
    s3.put_object(Bucket="scratch", Key="tmp", Body=b"x")
    s3.delete_object(Bucket="scratch", Key="tmp")
    s3.delete_bucket(Bucket="scratch")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_everything_survives_a_restart(
    s3_process: Callable[..., S3Process], workdir: Path, sig: signal.Signals
) -> None:
    server = s3_process()
    s3 = server.client()
    _populate(s3, workdir)
    before = snapshot(s3)
    big_sha = hashlib.sha256((workdir / "big.bin").read_bytes()).hexdigest()

    server.restart(sig)
    after = snapshot(server.client())

    assert after == before
    assert sorted(after) == ["models"], "the deleted bucket came back"
    objects = after["models"]
    assert "doomed" not in objects
    assert "batch/1" not in objects
    assert "batch/2" not in objects
    assert "batch/ü 3" not in objects, "quiet multi-delete (its result names no keys) was not persisted"
    for key, body in SMALL.items():
        assert objects[key]["sha256"] == hashlib.sha256(body).hexdigest()
        assert objects[key]["etag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert objects["overwritten"]["sha256"] == hashlib.sha256(b"version two").hexdigest()
    assert objects["copies/plain.txt"]["sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert objects["meta/object.json"]["content_type"] == "application/json"
    assert objects["meta/object.json"]["metadata"]["owner"] == "team-ml"
    big = objects["big/model.bin"]
    assert big["size"] == 20 * MB
    assert big["sha256"] == big_sha
    assert big["etag"].endswith('-3"'), "multipart ETag lost"
    assert big["metadata"] == {"sha256": "big"}


def test_restored_state_keeps_working(s3_process: Callable[..., S3Process]) -> None:
    """After a restore the server takes new writes, deletes and bucket deletes, and those persist too."""
    server = s3_process()
    s3 = server.client()
    s3.create_bucket(Bucket="keep")
    s3.create_bucket(Bucket="gone")
    s3.put_object(Bucket="keep", Key="a", Body=b"a")
    s3.put_object(Bucket="gone", Key="b", Body=b"b")
    server.restart(signal.SIGKILL)

    s3 = server.client()
    s3.delete_object(Bucket="gone", Key="b")
    s3.delete_bucket(Bucket="gone")
    s3.put_object(Bucket="keep", Key="a", Body=b"second life")
    s3.put_object_tagging(Bucket="keep", Key="a", Tagging={"TagSet": [{"Key": "stage", "Value": "prod"}]})
    server.restart(signal.SIGKILL)

    s3 = server.client()
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["keep"]
    assert s3.get_object(Bucket="keep", Key="a")["Body"].read() == b"second life"
    assert s3.get_object_tagging(Bucket="keep", Key="a")["TagSet"] == [{"Key": "stage", "Value": "prod"}]


def test_reset_clears_the_disk_too(s3_process: Callable[..., S3Process]) -> None:
    import urllib.request

    server = s3_process()
    server.client().create_bucket(Bucket="wiped")
    server.client().put_object(Bucket="wiped", Key="k", Body=b"k")
    urllib.request.urlopen(urllib.request.Request(f"{server.url}/moto-api/reset", method="POST"), timeout=5).close()
    server.restart(signal.SIGKILL)
    assert server.client().list_buckets()["Buckets"] == []


def test_leftovers_and_damaged_files_never_surface(s3_process: Callable[..., S3Process], workdir: Path) -> None:
    """Crash leftovers (temp files, a bucket folder without bucket.json) are cleaned; a damaged file is skipped."""
    server = s3_process()
    server.client().create_bucket(Bucket="real")
    server.client().put_object(Bucket="real", Key="k", Body=b"committed")
    server.stop(signal.SIGKILL)
    buckets = workdir / "data" / "buckets"
    [committed] = (buckets / "real" / "objects").iterdir()
    (buckets / "real" / "objects" / ".tmp-deadbeef").write_bytes(b"half a write")
    (buckets / "half-created" / "objects").mkdir(parents=True)
    (buckets / "real" / "objects" / ("0" * 64)).write_bytes(committed.read_bytes()[:-3])  # damaged by hand

    server.start()
    s3 = server.client()
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["real"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="real")["Contents"]] == ["k"]
    assert not (buckets / "half-created").exists()
    assert not (buckets / "real" / "objects" / ".tmp-deadbeef").exists()
    log = server.log_tail()
    assert "restored 1 objects in 1 buckets" in log
    assert "object file does not hold the 9 bytes its header names" in log
