import pytest

from sandbox.errors import InvalidURI
from sandbox.uri import ArtifactURI


@pytest.mark.parametrize(
    ("uri", "prefix"),
    [("s3://models/m/1", "m/1/"), ("s3://models/m/1/", "m/1/"), ("s3://my.bucket-2/Model_A/v1.0", "Model_A/v1.0/")],
)
def test_valid_uris_normalise_to_a_trailing_slash_prefix(uri: str, prefix: str) -> None:
    parsed = ArtifactURI.parse(uri)
    assert parsed.prefix == prefix
    assert str(parsed).endswith("/")


@pytest.mark.parametrize(
    ("uri", "code", "words"),
    [
        ("gs://models/m/1", "uri.invalid", "not an s3://"),
        ("s3://models", "uri.invalid", "bucket root"),
        ("s3://models/m", "uri.invalid", "1 path segment"),
        ("s3://models/m/1/extra", "uri.invalid", "3 path segment"),
        ("s3://models/m/1/saved_model.pb", "uri.points-to-file", "names a file"),
        ("s3://models/m/1/model.mar", "uri.points-to-file", "names a file"),
        ("s3://Models/m/1", "uri.invalid", "not a valid bucket name"),
        ("s3://models/../1", "uri.invalid", "not a valid MODEL_ID"),
    ],
)
def test_bad_uris_are_refused_with_code_and_layout_hint(uri: str, code: str, words: str) -> None:
    with pytest.raises(InvalidURI) as excinfo:
        ArtifactURI.parse(uri)
    assert excinfo.value.code == code
    assert words in excinfo.value.message
    assert "s3://" in excinfo.value.hint
    assert excinfo.value.exit_code == 2
