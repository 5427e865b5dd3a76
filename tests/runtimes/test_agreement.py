"""The checker and the runtime agree: for every image, ``check --image X`` finds an error exactly when a real
deploy on X fails.

Artifacts are built with the sandbox's own frameworks (TF 2.18, torch 2.13); each is checked against every
image and deployed (``--force``) on every image that runs natively. GPU twins run the same runtime as their CPU
image, so they deploy one artifact that serves and one that does not. The deploys are the slow part.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.artifacts import check_artifact
from sandbox.engine import Sandbox
from sandbox.images import IMAGES, resolve

from . import artifacts
from .conftest import Outcome, predictions

Builder = Callable[[Path, Path], Path]


def _handler(source: str) -> Builder:
    return lambda out, scratch: artifacts.custom_handler(out, scratch, source)


#: artifact -> (framework, builder, images it serves on). Everything else must fail, in the checker and the runtime.
TORCH_ALL = {"pytorch-cpu.2-4", "pytorch-gpu.2-4", "pytorch-cpu.2-1", "pytorch-gpu.2-1"}
TF_ALL = {"tf2-cpu.2-18", "tf2-gpu.2-18", "tf2-cpu.2-14", "tf2-gpu.2-14"}
ARTIFACTS: dict[str, tuple[str, Builder, set[str]]] = {
    "torchscript-linear": ("torch", artifacts.torchscript_linear, TORCH_ALL),
    "whole-pickle-plain-load": ("torch", artifacts.whole_pickle_plain_load, TORCH_ALL),
    "image-classifier": ("torch", artifacts.image_classifier, TORCH_ALL),
    "handler-match-statement": ("torch", _handler(artifacts.PY39_BREAKERS["match"]), set()),
    "handler-union-annotation": ("torch", _handler(artifacts.PY39_BREAKERS["union-annotation"]), set()),
    "handler-imports-tomllib": ("torch", _handler(artifacts.PY39_BREAKERS["tomllib"]), set()),
    "torchscript-new-operator": ("torch", artifacts.torchscript_new_operator, set()),
    "torchscript-format-11": ("torch", artifacts.torchscript_future_format, set()),
    "keras3-dense": ("tf", artifacts.keras3_dense, TF_ALL),
    "tf-op-newer-than-2.14": ("tf", artifacts.tf_new_op, {"tf2-cpu.2-18", "tf2-gpu.2-18"}),
}
#: What GPU twins deploy (the rest of their column is the CPU image's runtime again).
TWIN_SAMPLE = {"torchscript-linear", "torchscript-new-operator", "keras3-dense", "tf-op-newer-than-2.14"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {}
    for name, (_, build, _) in ARTIFACTS.items():
        folders[name] = build(tmp_path_factory.mktemp(name) / "v1", tmp_path_factory.mktemp(name + "-src"))
    return folders


def _cases(image: str) -> list[str]:
    framework = resolve(image).framework
    names = [n for n, (fw, _, _) in ARTIFACTS.items() if fw == framework]
    return [n for n in names if n in TWIN_SAMPLE] if resolve(image).accelerator else names


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_checker_verdicts(built: dict[str, Path], image: str) -> None:
    """The static half, for every image (tf2-cpu.2-6 too): the checker says 'fails' exactly where expected."""
    chosen = resolve(image)
    for name, (framework, _, serves_on) in ARTIFACTS.items():
        if framework != chosen.framework or not chosen.native:
            continue
        report = check_artifact(built[name], chosen)
        errors = [f"{d.code}: {d.message}" for d in report.diagnostics if d.severity == "error"]
        assert report.ok == (image in serves_on), f"{name} on {image}: {errors or 'no errors'}"


@pytest.mark.slow
@pytest.mark.torchserve
@pytest.mark.tfserving
@pytest.mark.parametrize("image", sorted(i for i in IMAGES if IMAGES[i].native))
def test_checker_and_runtime_agree(built: dict[str, Path], deploy: Callable[..., Outcome], image: str) -> None:
    rows, disagree = [], []
    for name in _cases(image):
        report = check_artifact(built[name], resolve(image))
        outcome = deploy(built[name], image, force=True)
        expected = image in ARTIFACTS[name][2]
        codes = ",".join(sorted({d.code for d in report.diagnostics if d.severity == "error"})) or "-"
        rows.append(f"| {image} | {name} | {'ok' if report.ok else 'error'} ({codes}) | "
                    f"{'serves' if outcome.served else 'fails'} | {'yes' if report.ok == outcome.served else 'NO'} |")
        if not (report.ok == outcome.served == expected):
            disagree.append(f"{name}: check ok={report.ok}, served={outcome.served}, expected serves={expected}\n"
                            f"{outcome.error[-1500:]}")
    print("\n" + "\n".join(rows))
    assert not disagree, "\n\n".join(disagree)


@pytest.mark.slow
@pytest.mark.tfserving
@pytest.mark.parametrize("image", ["tf2-cpu.2-14", "tf2-cpu.2-18"])
def test_keras3_export_checks_clean_and_serves_keras_numbers(
    sandbox: Sandbox, deploy: Callable[..., Outcome], tmp_path: Path, image: str
) -> None:
    """Keras 3 / TF 2.18 exports carry VarHandleOp.debug_name, which TF 2.14 drops: no error, the same numbers."""
    folder = artifacts.keras3_dense(tmp_path / "v1", tmp_path)
    report = check_artifact(folder, resolve(image))
    assert report.ok and not [d for d in report.diagnostics if d.code == "tf.attr-unsupported" and d.severity != "info"]
    outcome = deploy(folder, image, force=False)
    assert outcome.served, outcome.error
    expected = json.loads((tmp_path / "reference.json").read_text())
    [served] = predictions(sandbox, outcome.endpoint, [[1.0, 1.0, 1.0, 1.0]])
    assert served == pytest.approx(expected[0], abs=1e-5)
