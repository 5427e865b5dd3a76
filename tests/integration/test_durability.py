"""Bucket bytes and deployments survive `down`/`up` and a `kill -9` of the S3 server; S3 wants the project keys."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from sandbox.engine import Sandbox
from sandbox.errors import SandboxError
from tests.integration.conftest import close

MB = 1024 * 1024


def _s3(sb: Sandbox, access: str | None = None, secret: str | None = None) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=sb.running().s3_url,
        region_name="us-east-1",
        aws_access_key_id=access or sb.settings.access_key,
        aws_secret_access_key=secret or sb.settings.secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _fingerprint(sb: Sandbox) -> dict[str, tuple[int, str, str]]:
    """Every object in every bucket -> (size, ETag, sha256 of the bytes read back over HTTP)."""
    s3, out = _s3(sb), {}
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"]
                digest = hashlib.sha256()
                for chunk in body.iter_chunks(MB):
                    digest.update(chunk)
                out[f"{bucket}/{item['Key']}"] = (item["Size"], item["ETag"], digest.hexdigest())
    return out


def _serves(sb: Sandbox, endpoint: str, reference: Callable[[Any], Any], timeout: float = 120) -> None:
    """Wait until the endpoint answers 200 with the reference numbers (deployments are re-reconciled at start)."""
    instances = [[1.0, 2.0, 3.0, 4.0]]
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            status, body = sb.predict(endpoint, instances)
        except SandboxError as exc:
            status, body = 0, str(exc)
        if status == 200:
            assert close(body["predictions"], reference(instances))
            return
        last = (status, body)
        time.sleep(0.3)
    raise AssertionError(f"{endpoint} did not serve again within {timeout}s: {last}")


def _deploy_and_fill(sb: Sandbox, tf_model: tuple[Path, Any], tmp_path: Path) -> None:
    folder, _ = tf_model
    sb.upload(folder, "s3://models/durable/1", progress=False)
    big = tmp_path / "big" / "weights.bin"
    big.parent.mkdir()
    with open(big, "wb") as f:
        for _ in range(20):
            f.write(os.urandom(MB))
    sb.upload(big.parent, "s3://models/large/1", progress=False)  # multipart (8 MB parts)
    sb.deploy("s3://models/durable/1", "tf2-cpu.2-18", "durable-ep")


def test_down_and_up_keep_every_byte_and_every_deployment(
    own_sandbox: Sandbox, tf_model: tuple[Path, Any], tmp_path: Path
) -> None:
    _deploy_and_fill(own_sandbox, tf_model, tmp_path)
    before = _fingerprint(own_sandbox)
    assert any(etag.strip('"').endswith("-3") for _, etag, _ in before.values()), before  # 20 MB in 3 parts
    resources_before = {
        (r["kind"], r["metadata"]["name"]) for k in ("DeployedModel", "Endpoint") for r in own_sandbox.get(k)
    }

    pods = [f"pod/{p['name']}" for p in own_sandbox.pods()]
    assert own_sandbox.down() == ["control-plane", *pods, "s3"]
    own_sandbox.up()

    assert _fingerprint(own_sandbox) == before
    resources_after = {
        (r["kind"], r["metadata"]["name"]) for k in ("DeployedModel", "Endpoint") for r in own_sandbox.get(k)
    }
    assert resources_after == resources_before
    _serves(own_sandbox, "durable-ep", tf_model[1])


def test_kill_9_of_the_s3_server_loses_nothing(
    own_sandbox: Sandbox, tf_model: tuple[Path, Any], tmp_path: Path
) -> None:
    _deploy_and_fill(own_sandbox, tf_model, tmp_path)
    before = _fingerprint(own_sandbox)
    s3_pid = own_sandbox.stack.state().s3.pid  # type: ignore[union-attr]
    os.kill(s3_pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while {c.name: c.state for c in own_sandbox.stack.status()}["s3"] != "crashed":
        assert time.monotonic() < deadline, "the killed S3 server never showed as crashed"
        time.sleep(0.05)

    _, started = own_sandbox.up()  # repairs the stack: everything restarted, state restored from disk
    assert started
    assert _fingerprint(own_sandbox) == before
    _serves(own_sandbox, "durable-ep", tf_model[1])


def test_s3_takes_only_the_project_keys(sandbox: Sandbox) -> None:
    """On the session's sandbox (nothing here stops or restarts it): its probe object is removed at the end."""
    good = _s3(sandbox)
    good.put_object(Bucket="models", Key="keys/probe.txt", Body=b"probe")
    try:
        for access, secret, code in (
            ("not-the-project-key", sandbox.settings.secret_key, "InvalidAccessKeyId"),
            (sandbox.settings.access_key, "not-the-secret", "SignatureDoesNotMatch"),
        ):
            with pytest.raises(botocore.exceptions.ClientError) as info:
                _s3(sandbox, access, secret).get_object(Bucket="models", Key="keys/probe.txt")
            assert info.value.response["Error"]["Code"] == code
        creds = (sandbox.settings.home / "credentials.env").read_text()
        assert f"AWS_ACCESS_KEY_ID={sandbox.settings.access_key}" in creds
        assert good.get_object(Bucket="models", Key="keys/probe.txt")["Body"].read() == b"probe"
    finally:
        good.delete_object(Bucket="models", Key="keys/probe.txt")
