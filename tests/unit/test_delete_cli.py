"""`gdc-sandbox delete`'s own usage errors: they come before any call to the sandbox, so none needs to run."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["delete", "deployedmodel"], "error[usage.delete]: resource(s) were provided, but no name was specified"),
        (["delete", "all"], "error[usage.delete]: resource(s) were provided, but no name was specified"),
        (["delete"], "error[usage.delete]: you must specify the type of resource"),
        (["delete", "deployedmodel/a", "b"], "error[usage]: there is no need to give a name when using TYPE/NAME"),
    ],
)
def test_delete_refuses_what_names_no_resource_with_a_hint(
    argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GDC_SANDBOX_HOME", str(tmp_path / "home"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "\nHint: " in err


@pytest.mark.parametrize("argv", [["delete", "deployedmodel/a"], ["delete", "deployedmodel", "a"]])
def test_delete_takes_type_slash_name_or_type_then_name(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GDC_SANDBOX_HOME", str(tmp_path / "home"))
    assert main(argv) != 0
    assert "error[sandbox.not-running]" in capsys.readouterr().err  # it got as far as calling the sandbox
