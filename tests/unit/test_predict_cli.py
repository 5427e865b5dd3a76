"""`gdc-sandbox predict`'s own usage errors: they come before any call to the sandbox, so none needs to run."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.cli import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GDC_SANDBOX_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "--instances", "[[1.0]]"], "error[usage]: name one endpoint\n"),
        (["predict", "a", "--endpoint", "b", "--instances", "[[1.0]]"], "error[usage]: name one endpoint, not a and b"),
        (["predict", "ep", "--file", "no-such-request.json"], "error[usage]: cannot read --file no-such-request.json"),
        (["predict", "ep", "--instances", "[[1.0,"], "error[usage]: --instances is not valid JSON"),
    ],
)
def test_predict_refuses_what_it_cannot_send_with_a_hint(
    argv: list[str], message: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "\nHint: " in err


@pytest.mark.parametrize("argv", [["predict", "ep"], ["predict", "--endpoint", "ep"], ["predict", "ep", "--endpoint", "ep"]])
def test_predict_takes_the_endpoint_positionally_or_as_deploy_spells_it(
    argv: list[str], home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--instances", "[[1.0]]"]) != 0
    assert "error[sandbox.not-running]" in capsys.readouterr().err  # it got as far as calling the sandbox
