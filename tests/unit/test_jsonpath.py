import pytest

from sandbox.errors import UsageError
from sandbox.jsonpath import render_jsonpath

DOC = {
    "status": {"primaryCondition": {"reason": "Ready", "message": "DeployedModel is ready"}},
    "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}],
}


def test_map_values_print_as_json_and_strings_bare() -> None:
    assert (
        render_jsonpath(DOC, "{.status.primaryCondition}") == '{"reason": "Ready", "message": "DeployedModel is ready"}'
    )
    assert render_jsonpath(DOC, "{.status.primaryCondition.reason}") == "Ready"


def test_indexes_and_wildcards() -> None:
    assert render_jsonpath(DOC, "{.items[1].metadata.name}") == "b"
    assert render_jsonpath(DOC, "{.items[*].metadata.name}") == "a b"
    assert render_jsonpath(DOC, "{.status.missing}") == ""


def test_unsupported_expression_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        render_jsonpath(DOC, "{$.status[?(@.x)]}")
