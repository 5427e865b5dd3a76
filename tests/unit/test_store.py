import hashlib
import os
from pathlib import Path

import pytest

from sandbox.errors import Conflict, NotFound, UsageError
from sandbox.s3.client import StorageError, Store, expected_etag
from sandbox.uri import ArtifactURI


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_upload_verifies_and_download_round_trips_bytes(store: Store, tmp_path: Path) -> None:
    src = _tree(
        tmp_path / "src",
        {
            "saved_model.pb": b"pb",
            "variables/variables.index": b"i",
            "variables/variables.data-00000-of-00001": os.urandom(9 * 1024 * 1024),
        },
    )
    uri = ArtifactURI.parse("s3://models/m/1")
    result = store.upload(src, uri, progress=False)
    assert sorted(result.keys) == [
        "m/1/saved_model.pb",
        "m/1/variables/variables.data-00000-of-00001",
        "m/1/variables/variables.index",
    ]
    head = store.client.head_object(Bucket="models", Key="m/1/variables/variables.data-00000-of-00001")
    assert head["ETag"].strip('"').endswith("-2")  # multipart, and still verified
    out = tmp_path / "out"
    store.download(uri, out)
    for rel in ("saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001"):
        assert hashlib.sha256((out / rel).read_bytes()).digest() == hashlib.sha256((src / rel).read_bytes()).digest()


def test_download_is_prefix_safe_and_skips_folder_markers(store: Store, tmp_path: Path) -> None:
    for key in ("m/1/saved_model.pb", "m/10/saved_model.pb", "m/1-old/x", "M/1/upper", "m/1/variables/"):
        store.client.put_object(Bucket="models", Key=key, Body=b"" if key.endswith("/") else key.encode())
    out = tmp_path / "out"
    written = store.download(ArtifactURI.parse("s3://models/m/1"), out)
    assert [p.relative_to(out).as_posix() for p in written] == ["saved_model.pb"]
    assert (out / "saved_model.pb").read_bytes() == b"m/1/saved_model.pb"


def test_wrong_case_prefix_is_not_found_with_a_hint(store: Store, tmp_path: Path) -> None:
    store.client.put_object(Bucket="models", Key="M/1/saved_model.pb", Body=b"x")
    with pytest.raises(NotFound) as excinfo:
        store.download(ArtifactURI.parse("s3://models/m/1"), tmp_path)
    assert "case-sensitive" in excinfo.value.hint


def test_upload_refuses_to_overwrite_a_version_unless_asked(store: Store, tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", {"model.mar": b"one"})
    uri = ArtifactURI.parse("s3://models/m/1")
    store.upload(src, uri, progress=False)
    (src / "model.mar").write_bytes(b"two")
    with pytest.raises(Conflict):
        store.upload(src, uri, progress=False)
    assert store.client.get_object(Bucket="models", Key="m/1/model.mar")["Body"].read() == b"one"
    store.upload(src, uri, overwrite=True, progress=False)
    assert store.client.get_object(Bucket="models", Key="m/1/model.mar")["Body"].read() == b"two"


def test_bad_sources_and_missing_bucket(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        store.upload(tmp_path / "nope", ArtifactURI.parse("s3://models/m/1"), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no files"):
        store.upload(tmp_path / "empty", ArtifactURI.parse("s3://models/m/1"), progress=False)
    single = _tree(tmp_path / "f", {"model.mar": b"x"}) / "model.mar"
    with pytest.raises(StorageError) as excinfo:
        store.upload(single, ArtifactURI.parse("s3://nobucket/m/1"), progress=False)
    assert excinfo.value.code == "s3.NoSuchBucket"


def test_expected_etag_matches_s3_for_small_files(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    assert expected_etag(path) == hashlib.md5(b"hello").hexdigest()
