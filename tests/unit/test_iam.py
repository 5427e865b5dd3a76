"""IAM bindings: filters that filter, and no grant on a bucket that does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.control.iam import IAM
from sandbox.errors import NotFound, UsageError

VIEWER, USER = "project-bucket-object-viewer", "vertex-ai-prediction-user"


@pytest.fixture
def iam(tmp_path: Path) -> IAM:
    iam = IAM(tmp_path / "iam.json", bucket_exists=lambda bucket: bucket in ("models", "other"))
    iam.grant("default", "vai-default-serving-sa", VIEWER, "models")
    iam.grant("default", "vai-default-serving-sa", VIEWER, "other")
    iam.grant("default", "alice", USER)
    iam.grant("team", "bob", USER)
    return iam


def test_list_keeps_only_bindings_matching_every_filter(iam: IAM) -> None:
    assert {(b.identity, b.resource) for b in iam.list(role=USER)} == {("alice", "default"), ("bob", "team")}
    assert [b.resource for b in iam.list(role=VIEWER, resource="other")] == ["other"]
    assert [b.identity for b in iam.list(project="team")] == ["bob"]
    assert [b.role for b in iam.list(identity="alice")] == [USER]
    assert len(iam.list()) == 4
    with pytest.raises(UsageError) as info:
        iam.list(role="viewer")
    assert info.value.code == "iam.unknown-role"


def test_a_bucket_role_on_a_missing_bucket_is_refused_with_the_command_that_creates_it(iam: IAM) -> None:
    with pytest.raises(NotFound) as info:
        iam.grant("default", "vai-default-serving-sa", VIEWER, "missing")
    assert info.value.code == "iam.no-such-bucket" and "bucket missing does not exist" in info.value.message
    assert "`gdc-sandbox mb s3://missing`" in info.value.hint
    assert not iam.list(resource="missing")
