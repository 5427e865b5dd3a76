"""The S3 endpoint takes only the project's keys and answers wrong ones with S3's own errors (real HTTP, boto3)."""

from __future__ import annotations

from collections.abc import Callable

import boto3
import botocore.exceptions
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from tests.s3server.harness import S3Process

KEYS = ("project-key", "project-secret")


@pytest.fixture
def guarded(s3_process: Callable[..., S3Process]) -> S3Process:
    server = s3_process(keys=KEYS)
    s3 = server.client()
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="m/1/saved_model.pb", Body=b"model bytes")
    return server


def _error_code(call: Callable[[], object]) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_the_project_keys_work_for_every_kind_of_request(guarded: S3Process, tmp_path) -> None:
    s3 = guarded.client()
    assert s3.get_object(Bucket="models", Key="m/1/saved_model.pb")["Body"].read() == b"model bytes"
    odd = "m/1/ümlaut dir/a+b=c&d.txt"
    s3.put_object(Bucket="models", Key=odd, Body=b"odd", Metadata={"sha256": "x"}, ContentType="text/plain")
    listed = s3.list_objects_v2(Bucket="models", Prefix="m/1/", Delimiter="/", MaxKeys=50)
    assert [c["Key"] for c in listed["Contents"]] == ["m/1/saved_model.pb"]
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (6 * 1024 * 1024))
    s3.upload_file(str(big), "models", "m/1/big.bin", Config=TransferConfig(multipart_threshold=5 * 1024 * 1024))
    assert s3.head_object(Bucket="models", Key="m/1/big.bin")["ContentLength"] == 6 * 1024 * 1024
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "models", "Key": odd}, ExpiresIn=60)
    assert requests.get(url, timeout=5).content == b"odd"


def test_unknown_access_key_gets_invalid_access_key_id(guarded: S3Process) -> None:
    s3 = guarded.client(("someone-else", KEYS[1]))
    assert _error_code(lambda: s3.get_object(Bucket="models", Key="m/1/saved_model.pb")) == ("InvalidAccessKeyId", 403)
    assert _error_code(lambda: s3.list_buckets()) == ("InvalidAccessKeyId", 403)


def test_wrong_secret_gets_signature_does_not_match(guarded: S3Process) -> None:
    s3 = guarded.client((KEYS[0], "not-the-secret"))
    code = _error_code(lambda: s3.put_object(Bucket="models", Key="m/1/saved_model.pb", Body=b"overwrite"))
    assert code == ("SignatureDoesNotMatch", 403)
    assert guarded.client().get_object(Bucket="models", Key="m/1/saved_model.pb")["Body"].read() == b"model bytes"


def test_tampered_presigned_url_and_anonymous_requests_are_refused(guarded: S3Process) -> None:
    s3 = guarded.client()
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "models", "Key": "m/1/saved_model.pb"})
    tampered = requests.get(url.replace("saved_model.pb", "other.pb"), timeout=5)
    assert tampered.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in tampered.text
    anonymous = requests.get(f"{guarded.url}/models/m/1/saved_model.pb", timeout=5)
    assert anonymous.status_code == 403
    assert "<Code>AccessDenied</Code>" in anonymous.text
    unsigned = boto3.client(
        "s3",
        endpoint_url=guarded.url,
        region_name="us-east-1",
        config=Config(signature_version=botocore.UNSIGNED, s3={"addressing_style": "path"}),
    )
    assert _error_code(lambda: unsigned.list_objects_v2(Bucket="models")) == ("AccessDenied", 403)


def test_without_require_keys_any_credentials_work(s3_process: Callable[..., S3Process]) -> None:
    server = s3_process(persist=False)
    server.client(("whatever", "anything")).create_bucket(Bucket="open")
    assert server.client(("other", "keys")).list_buckets()["Buckets"][0]["Name"] == "open"


@pytest.mark.parametrize("secret", [KEYS[1], "wrong"], ids=["right-secret", "wrong-secret"])
def test_signature_version_2_clients_are_checked_too(guarded: S3Process, secret: str) -> None:
    v2 = boto3.client(
        "s3",
        endpoint_url=guarded.url,
        region_name="us-east-1",
        aws_access_key_id=KEYS[0],
        aws_secret_access_key=secret,
        config=Config(signature_version="s3", s3={"addressing_style": "path"}),
    )
    if secret == KEYS[1]:
        v2.put_object(Bucket="models", Key="v2/ü key", Body=b"v2", ContentType="text/plain")
        assert v2.get_object(Bucket="models", Key="v2/ü key")["Body"].read() == b"v2"
    else:
        assert _error_code(lambda: v2.get_object(Bucket="models", Key="m/1/saved_model.pb")) == (
            "SignatureDoesNotMatch",
            403,
        )
