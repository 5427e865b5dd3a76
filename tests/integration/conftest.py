"""Integration fixtures: one private sandbox per session (the plugin's ``sandbox``), tiny real models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.engine import Sandbox
from sandbox.export import export_tensorflow, export_torch
from sandbox.testing.scratch import private_keras_home

private_keras_home()


@pytest.fixture
def cli(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Any]:
    """Run ``gdc-sandbox ARGS`` in-process against the session sandbox; returns (exit code, stdout, stderr)."""
    from sandbox.cli import main

    monkeypatch.setenv("GDC_SANDBOX_HOME", str(sandbox.settings.home))

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def torch_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Callable[[Any], Any]]:
    """A TorchScript Linear(4->2) archived as model.mar, and torch's own forward for comparison."""
    import torch

    torch.manual_seed(0)
    module = torch.nn.Linear(4, 2).eval()
    folder = export_torch(module, tmp_path_factory.mktemp("torch") / "art", example_inputs=torch.zeros(1, 4)).parent

    def reference(instances: Any) -> Any:
        with torch.no_grad():
            return module(torch.as_tensor(instances, dtype=torch.float32)).tolist()

    return folder, reference


@pytest.fixture(scope="session")
def tf_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Callable[[Any], Any]]:
    """A Keras 3 Dense(4->2) exported with model.export, and Keras's own output for comparison."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    folder = export_tensorflow(model, tmp_path_factory.mktemp("tf") / "art")

    def reference(instances: Any) -> Any:
        return model(np.asarray(instances, dtype="float32")).numpy().tolist()

    return folder, reference


def close(a: Any, b: Any, atol: float = 1e-5) -> bool:
    import numpy as np

    return bool(np.allclose(np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64"), atol=atol))
