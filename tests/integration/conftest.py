"""Integration fixtures: one private sandbox per session (the plugin's ``sandbox``), tiny real models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.engine import Sandbox
from sandbox.export import export_tensorflow, export_torch
from sandbox.settings import Settings
from sandbox.testing.scratch import private_keras_home

TF_WARM_ONLY = "tf2-cpu.2-18"
"""``warm_images`` of the private sandboxes that never deploy PyTorch: an idle TorchServe (a JVM and a torch import)
would be started, and stopped unused, by each of them."""

private_keras_home()


@pytest.fixture
def cli(sandbox: Sandbox, cli_for: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``gdc-sandbox ARGS`` in-process against the session sandbox; returns (exit code, stdout, stderr)."""
    return cli_for(sandbox)  # type: ignore[no-any-return]


@pytest.fixture
def cli_for(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Any]:
    """``cli_for(sandbox)("status")``: run the CLI in-process against a given sandbox; (exit code, out, err)."""
    from sandbox.cli import main

    def bind(sb: Sandbox) -> Callable[..., tuple[int, str, str]]:
        def run(*argv: str) -> tuple[int, str, str]:
            monkeypatch.setenv("GDC_SANDBOX_HOME", str(sb.settings.home))
            capsys.readouterr()
            code = main(list(argv))
            out, err = capsys.readouterr()
            return code, out, err

        return run

    return bind


@pytest.fixture
def own_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A private sandbox that a test may stop, kill and restart (the session one is not disturbed)."""
    sb = Sandbox(Settings(home=tmp_path / "home", s3_port=0, gateway_port=0, warm_images=TF_WARM_ONLY))
    sb.up()
    try:
        yield sb
    finally:
        sb.down()


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


def _tf_dense(seed: int, folder: Path) -> tuple[Path, Callable[[Any], Any]]:
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    folder = export_tensorflow(model, folder)

    def reference(instances: Any) -> Any:
        return model(np.asarray(instances, dtype="float32")).numpy().tolist()

    return folder, reference


@pytest.fixture(scope="session")
def tf_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Callable[[Any], Any]]:
    """A Keras 3 Dense(4->2) exported with model.export, and Keras's own output for comparison."""
    return _tf_dense(0, tmp_path_factory.mktemp("tf") / "art")


@pytest.fixture(scope="session")
def other_tf_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Callable[[Any], Any]]:
    """The same Dense(4->2) with other weights: a second version whose answers differ from ``tf_model``'s."""
    return _tf_dense(1, tmp_path_factory.mktemp("tf-other") / "art")


def close(a: Any, b: Any, atol: float = 1e-5) -> bool:
    import numpy as np

    return bool(np.allclose(np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64"), atol=atol))
