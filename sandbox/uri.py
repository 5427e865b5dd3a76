"""``s3://BUCKET/MODEL_ID/MODEL_VERSION_ID/``: the one artifact location GDC accepts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sandbox.errors import InvalidURI

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt", "model.mar", "variables", ".pt", ".pth", ".keras", ".h5", ".mar")

LAYOUT_HINT = "artifacts live at s3://BUCKET/MODEL_ID/MODEL_VERSION_ID/, e.g. s3://models/my-model/1/"


def split_bucket(uri: str) -> tuple[str, str]:
    """``s3://BUCKET/KEY`` -> (BUCKET, KEY), refusing other schemes and names S3 does not allow for buckets."""
    if not uri.startswith("s3://"):
        raise InvalidURI(f"{uri!r} is not an s3:// URI", hint=LAYOUT_HINT)
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not _BUCKET.match(bucket):
        raise InvalidURI(
            f"{bucket!r} is not a valid bucket name in {uri!r}",
            hint="bucket names are 3-63 lowercase letters, digits, dots and hyphens; " + LAYOUT_HINT,
        )
    return bucket, key


@dataclass(frozen=True)
class ArtifactURI:
    """A parsed version-folder URI."""

    bucket: str
    model_id: str
    version_id: str

    @property
    def prefix(self) -> str:
        """The key prefix, always with a trailing slash so that ``m/1/`` never matches ``m/10/``."""
        return f"{self.model_id}/{self.version_id}/"

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @classmethod
    def parse(cls, uri: str) -> ArtifactURI:
        """Parse and validate; every rejection says what was wrong and what the layout is."""
        bucket, key = split_bucket(uri)
        parts = [p for p in key.split("/") if p != ""] if key else []
        if "//" in key.strip("/"):
            raise InvalidURI(f"{uri!r} has an empty path segment", hint=LAYOUT_HINT)
        if len(parts) > 2 and (parts[-1].endswith(_MODEL_FILES) or "." in parts[-1]):
            raise InvalidURI(
                f"{uri!r} names a file; the artifact URI must be the version folder",
                code="uri.points-to-file",
                hint=f"use s3://{bucket}/{parts[0]}/{parts[1]}/ (the folder that holds the model files at its top)",
            )
        if len(parts) != 2:
            found = "the bucket root" if not parts else f"{len(parts)} path segment(s)"
            raise InvalidURI(
                f"{uri!r} has {found}; expected exactly MODEL_ID/MODEL_VERSION_ID under the bucket",
                hint=LAYOUT_HINT,
            )
        for part in parts:
            if not _SEGMENT.match(part) or part in (".", ".."):
                raise InvalidURI(
                    f"{part!r} in {uri!r} is not a valid MODEL_ID or MODEL_VERSION_ID",
                    hint="use letters, digits, '.', '_' and '-', starting with a letter or digit; " + LAYOUT_HINT,
                )
        return cls(bucket, parts[0], parts[1])
