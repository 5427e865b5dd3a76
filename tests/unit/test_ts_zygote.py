"""The worker zygote's rules: a worker is forked only when the child can be exactly what ``python
model_service_worker.py`` would be; otherwise it starts cold. (The forked workers themselves run in
tests/runtimes/test_warm_torchserve.py, on the image's runtime.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sandbox.runtimes.ts_zygote import Zygote


@pytest.fixture
def zygote() -> Zygote:
    return Zygote()  # TorchServe's worker modules are not imported: the rules only read sys.modules and files


def order(zygote: Zygote, model_dir: Path, **env: str) -> dict[str, Any]:
    """What the frontend's worker launcher sends: python, the worker script and its flags, cwd, environment."""
    worker_env = {**zygote.env, "PYTHONPATH": f"{model_dir}{os.pathsep}", "PWD": str(model_dir), **env}
    argv = ["python", zygote.script, "--sock-type", "unix", "--sock-name", "/tmp/x/.ts.sock.9000"]
    return {"argv": argv, "cwd": str(model_dir), "env": worker_env}


def test_a_worker_of_an_ordinary_model_is_forked(zygote: Zygote, tmp_path: Path) -> None:
    for name in ("handler.py", "model.pt", "MAR-INF", "index_to_name.json"):
        (tmp_path / name).touch()
    assert zygote.why_cold(order(zygote, tmp_path)) == ""


def test_a_model_folder_shadowing_an_imported_module_starts_cold(zygote: Zygote, tmp_path: Path) -> None:
    """A cold worker would import the model's json.py instead of the standard one: the fork could not."""
    (tmp_path / "json.py").write_text("raise ImportError('the model ships its own json')\n")
    assert "holds modules named like imported ones: ['json']" in zygote.why_cold(order(zygote, tmp_path))


def test_another_environment_or_script_starts_cold(zygote: Zygote, tmp_path: Path) -> None:
    assert "environment differs: ['OMP_NUM_THREADS']" in zygote.why_cold(order(zygote, tmp_path, OMP_NUM_THREADS="1"))
    other = order(zygote, tmp_path)
    other["argv"][1] = str(Path(zygote.ts_dir) / "metrics" / "metric_collector.py")
    assert zygote.why_cold(other).startswith("not the worker script")


def test_the_forked_workers_import_path_is_the_cold_workers(zygote: Zygote, tmp_path: Path) -> None:
    """``python SCRIPT`` with PYTHONPATH=MODEL:  -> script folder, the model folder, the cwd, then the rest."""
    model_dir = tmp_path / "models" / "abc"
    model_dir.mkdir(parents=True)
    path = zygote.worker_path(order(zygote, model_dir))
    assert path[:2] == [zygote.ts_dir, str(model_dir)]
    assert path[2:] == [p for p in zygote.base_path if p != str(model_dir)]
    assert len(path) == len(set(path))  # site removes duplicates (the trailing ':' is the cwd, the model folder)
