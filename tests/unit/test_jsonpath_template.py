"""kubectl's jsonpath templates over jsonpath-ng: the forms GDC's docs and kubectl users write."""

import pytest

from sandbox.errors import UsageError
from sandbox.jsonpath_template import render

ENDPOINT = {
    "metadata": {"name": "ep", "annotations": {"example.com/team": "ml"}},
    "status": {
        "conditions": [
            {"type": "Other", "status": "False"},
            {"type": "EndpointReady", "status": "True", "reason": "ResourceReady", "message": "Endpoint Ready"},
        ],
        "endpointFQDN": "ep.default.prediction.sandbox.localhost",
        "ready": True,
        "count": 2,
    },
}
LIST = {"items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]}


def test_the_documented_readiness_templates() -> None:
    assert render(ENDPOINT, '{$.status.conditions[?(@.type == "EndpointReady")]}') == (
        '{"message":"Endpoint Ready","reason":"ResourceReady","status":"True","type":"EndpointReady"}'
    )
    assert render(ENDPOINT, "{.status.endpointFQDN}") == "ep.default.prediction.sandbox.localhost"
    assert render(ENDPOINT, "{.status.conditions[?(@.type=='EndpointReady')].status}") == "True"


def test_range_literals_and_plain_text() -> None:
    assert render(LIST, '{range .items[*]}{.metadata.name}{"\\n"}{end}') == "a\nb\n"
    assert render(LIST, "{range .items[*]}[{.metadata.name}]{end}") == "[a][b]"
    assert render(ENDPOINT, "name={.metadata.name} ready={.status.ready} n={.status.count}") == "name=ep ready=true n=2"
    assert render(LIST, "{.items[*].metadata.name}") == "a b"
    assert render(LIST, "{.items[-1].metadata.name}") == "b"
    assert render(ENDPOINT, "{.metadata.annotations.example\\.com/team}") == "ml"
    assert render(ENDPOINT, "{.status.missing}") == ""


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{.status", "unclosed action"),
        ("{end}", "{end} without {range}"),
        ("{range .items[*]}", "without {end}"),
        ("{.a[?(}", "cannot parse"),
    ],
)
def test_bad_templates_name_the_problem(template: str, why: str) -> None:
    with pytest.raises(UsageError) as excinfo:
        render(ENDPOINT, template)
    assert why in excinfo.value.message and excinfo.value.code == "get.bad-jsonpath"
