"""Runtime environments: finding the image's Python, installing offline from a wheelhouse, reuse, `runtimes list`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.runtimes import envs, torch_envs


def test_missing_python_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GDC_SANDBOX_PYTHON31", sys.executable)  # a 3.11 named as 3.1: not taken
    with pytest.raises(envs.RuntimeUnavailable) as caught:
        envs.find_python("3.1")
    message = str(caught.value)
    assert "no Python 3.1 interpreter found" in message
    assert "pyenv install 3.1" in message and "GDC_SANDBOX_PYTHON31=/path/to/python3.1" in message


def test_python_of_the_pytorch_images_is_found_by_version() -> None:
    try:
        python = envs.find_python(torch_envs.PYTHON)
    except envs.RuntimeUnavailable as exc:
        pytest.skip(str(exc))
    assert envs.interpreter_version(str(python)) == "3.9"


def test_pytorch_runtime_pins_match_the_image() -> None:
    spec = torch_envs.env_spec("2.4")
    assert (spec.key, spec.python) == ("torch-2.4", "3.9")
    assert {"torch==2.4.1", "torchvision==0.19.1", "torchserve==0.12.0"} <= set(spec.packages)
    assert {"torch==2.1.2", "torchvision==0.16.2"} <= set(torch_envs.env_spec("2.1.2").packages)
    with pytest.raises(torch_envs.TorchRuntimeUnavailable, match=r"runtimes for 2\.1, 2\.4"):
        torch_envs.env_spec("1.13")


def _tiny_wheelhouse(root: Path, spec: envs.EnvSpec) -> Path:
    """A wheelhouse in the layout `runtimes download` writes, holding one locally built wheel."""
    project = root / "src"
    (project / "gdcs_tiny").mkdir(parents=True)
    (project / "gdcs_tiny" / "__init__.py").write_text("ANSWER = 42\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "gdcs-tiny"\nversion = "0.1"\n'
    )
    house = root / "wheels" / spec.key
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(house), str(project)], check=True, capture_output=True, timeout=300)
    (house / "runtime.json").write_text(json.dumps({"key": spec.key}))
    return root / "wheels"


def test_install_from_a_wheelhouse_with_no_index_then_reuse(tmp_path: Path) -> None:
    spec = envs.EnvSpec(key="tiny", title="tiny test runtime", python=None, packages=("gdcs-tiny==0.1",),
                        verify="import gdcs_tiny; assert gdcs_tiny.ANSWER == 42")
    house = envs.wheelhouse_for(spec, _tiny_wheelhouse(tmp_path, spec))
    said: list[str] = []
    python = envs.ensure(spec, tmp_path / "cache", said.append, wheelhouse=house)
    assert python == tmp_path / "cache" / "tiny" / "bin" / "python"
    assert any("no network" in line and str(house) in line for line in said)
    assert any(line.startswith("tiny test runtime runtime ready") for line in said)
    stamp = envs.installed(spec, tmp_path / "cache")
    assert stamp is not None and stamp["wheelhouse"] == str(house) and int(str(stamp["bytes"])) > 0
    log = (tmp_path / "cache" / "tiny.install.log").read_text()
    assert "--no-index" in log
    said.clear()
    assert envs.ensure(spec, tmp_path / "cache", said.append) == python and said == []  # reused, silently


def test_wheelhouse_without_the_runtime_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(envs.RuntimeUnavailable, match="runtimes download"):
        envs.wheelhouse_for(torch_envs.env_spec("2.4"), tmp_path)


def test_runtimes_list_names_every_image_and_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sandbox.cli import main

    monkeypatch.setenv("GDC_SANDBOX_RUNTIME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GDC_SANDBOX_HOME", str(tmp_path / "home"))
    assert main(["runtimes", "list"]) == 0
    out = capsys.readouterr().out
    assert "torch-2.4   pytorch-cpu.2-4,pytorch-gpu.2-4  not installed" in out
    assert "tf2-cpu.2-6" in out and "unavailable" in out
    assert f"runtime cache: {tmp_path / 'cache'}" in out


def test_install_from_a_folder_without_wheels_is_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sandbox.cli import main

    monkeypatch.setenv("GDC_SANDBOX_RUNTIME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GDC_SANDBOX_HOME", str(tmp_path / "home"))
    assert main(["runtimes", "install", "--from", str(tmp_path), "pytorch-cpu.2-4"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error[runtimes.install-failed]:") and "gdc-sandbox runtimes download" in err
    assert "Traceback" not in err and not (tmp_path / "cache" / "torch-2.4").exists()
    assert main(["runtimes", "install", "tf2-cpu.2-6"]) == 1  # asked for an image no runtime can serve
    assert "skipped tf2-cpu.2-6: TensorFlow 2.6 cannot run natively here" in capsys.readouterr().err
