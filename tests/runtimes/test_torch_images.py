"""Each PyTorch image runs its own Python 3.9, torch and torchvision; its built-in handlers serve torchvision's numbers.

The first run creates the runtimes (``gdc-sandbox runtimes install`` does it ahead of time): minutes, once.
"""

from __future__ import annotations

import base64
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.artifacts import check_artifact, handler_ast
from sandbox.engine import Sandbox
from sandbox.images import resolve
from sandbox.runtimes.registry import RUNTIMES

from . import artifacts
from .conftest import Outcome, predictions

pytestmark = [pytest.mark.torchserve, pytest.mark.slow]
#: image -> (torch, torchvision) version prefixes the image's runtime must answer.
EXPECTED = {"pytorch-cpu.2-4": ("2.4.", "0.19."), "pytorch-cpu.2-1": ("2.1.", "0.16.")}


@pytest.mark.parametrize("image", sorted(EXPECTED))
def test_handler_sees_the_images_python_torch_and_torchvision(
    sandbox: Sandbox, deploy: Callable[..., Outcome], scratch: Callable[[str], Path], image: str
) -> None:
    folder = artifacts.custom_handler(scratch("art"), scratch("src"), artifacts.VERSIONS_HANDLER)
    assert check_artifact(folder, resolve(image)).ok
    outcome = deploy(folder, image, force=False)
    assert outcome.served, outcome.error
    [[torch_version, python_version, vision_version]] = predictions(sandbox, outcome.endpoint, [[0.0]])
    torch_prefix, vision_prefix = EXPECTED[image]
    assert torch_version.startswith(torch_prefix)
    assert python_version.startswith("3.9.")
    assert vision_version.startswith(vision_prefix)


@pytest.mark.parametrize("image", sorted(EXPECTED))
def test_builtin_image_classifier_gives_torchvisions_top_k(
    sandbox: Sandbox, deploy: Callable[..., Outcome], scratch: Callable[[str], Path], image: str
) -> None:
    folder = artifacts.image_classifier(scratch("art"), scratch("src"))
    assert check_artifact(folder, resolve(image)).ok
    outcome = deploy(folder, image, force=False)
    assert outcome.served, outcome.error
    png = artifacts.png_bytes()
    served = predictions(sandbox, outcome.endpoint, [{"data": {"b64": base64.b64encode(png).decode()}}])
    python = RUNTIMES["torch"].prepare(resolve(image))
    expected = artifacts.image_classifier_topk(python, _serialized(folder, scratch("x")), png)
    assert [list(row) for row in served] == [list(row) for row in expected]  # same classes, same order
    for got, want in zip(served, expected, strict=True):
        assert got == pytest.approx(want, abs=1e-5)


def test_whole_pickle_with_plain_torch_load_serves_on_24_and_checker_warns(
    sandbox: Sandbox, deploy: Callable[..., Outcome], scratch: Callable[[str], Path]
) -> None:
    import torch

    folder = artifacts.whole_pickle_plain_load(scratch("art"), scratch("src"))
    report = check_artifact(folder, resolve("pytorch-cpu.2-4"))
    assert report.ok
    [warning] = [d for d in report.diagnostics if d.code == "mar.weights-only"]
    assert warning.severity == "warning" and "torch>=2.6" in warning.message
    outcome = deploy(folder, "pytorch-cpu.2-4", force=False)
    assert outcome.served, outcome.error
    instances = [[1.0, 2.0, 3.0, 4.0]]
    torch.manual_seed(7)
    reference = torch.nn.Linear(4, 2)  # the same seed and layer as mymodel.Net's fc
    with torch.no_grad():
        expected = reference(torch.tensor(instances)).tolist()
    [served] = predictions(sandbox, outcome.endpoint, instances)
    assert served == pytest.approx(expected[0], abs=1e-6)
    worker_log = "\n".join(p.read_text() for p in sandbox.settings.run_dir.glob("pods/*/logs/worker-stderr.log"))
    assert "FutureWarning: You are using `torch.load` with `weights_only=False`" in worker_log
    with warnings.catch_warnings():  # and the sandbox's own torch (>= 2.6) refuses it, as the checker says
        warnings.simplefilter("ignore")
        with pytest.raises(Exception, match="Weights only load failed"):
            torch.load(str(_serialized(folder, scratch("x"))))


def _serialized(folder: Path, into: Path) -> Path:
    import zipfile

    with zipfile.ZipFile(folder / "model.mar") as zf:
        zf.extract("model.pt", into)
    return into / "model.pt"


@pytest.mark.parametrize("image", sorted(EXPECTED))
def test_every_builtin_handler_imports_in_the_images_runtime(image: str) -> None:
    """The checker accepts TorchServe's built-in handlers on these images: their imports (torchvision, captum,
    PIL, ...) must all be in the runtime, as in the image."""
    import subprocess

    python = RUNTIMES["torch"].prepare(resolve(image))
    modules = [f"ts.torch_handler.{name}" for name in handler_ast.BUILTIN_HANDLERS]
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint('ok')\n"
    proc = subprocess.run([str(python), "-c", code, *modules], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
