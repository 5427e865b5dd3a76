"""Builders of broken PyTorch artifacts (one per checker code): tiny Linear(4 -> 2) models and real archives.

Archives are made with the real ``torch-model-archiver`` (``sandbox.export.archive_mar``); where the
archiver itself refuses the mistake a user made with an older archiver or by hand, the builder
patches the finished archive's MANIFEST instead.
"""

from __future__ import annotations

import json
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

from sandbox.export import archive_mar, export_torch
from sandbox.testing.pickled import save_whole_model
from sandbox.testing.scenario import Built
from sandbox.testing.scratch import temp_dir


def _linear() -> Any:
    import torch

    torch.manual_seed(7)
    return torch.nn.Linear(4, 2).eval()


def _scratch() -> Path:
    return temp_dir("gdc-bug-")


def _write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def _patch_manifest(mar: Path, **model_fields: Any) -> None:
    """Rewrite MAR-INF/MANIFEST.json inside ``mar`` with ``model_fields`` merged into ``model``."""
    tmp = mar.with_suffix(".tmp")
    with zipfile.ZipFile(mar) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "MAR-INF/MANIFEST.json":
                manifest = json.loads(data)
                manifest["model"].update(model_fields)
                data = json.dumps(manifest, indent=2).encode()
            dst.writestr(info, data)
    tmp.replace(mar)


def _torchscript(folder: Path) -> Path:
    import torch

    path = folder / "model.pt"
    torch.jit.trace(_linear(), torch.zeros(1, 4)).save(str(path))
    return path


def _base_archive(out_dir: Path) -> Path:
    """A good model.mar (TorchScript Linear, base_handler) for a builder to break afterwards."""
    return archive_mar(_torchscript(_scratch()), out_dir, handler="base_handler")


# --- mar.wrong-filename / mar.model-name ---------------------------------------------------------
def mar_named_mnist(out_dir: Path) -> Built:
    """torch-model-archiver --model-name mnist writes mnist.mar (pytorch/tutorials torchserve_vertexai)."""
    import torch

    export_torch(_linear(), out_dir, example_inputs=torch.zeros(1, 4), model_name="mnist")
    return Built(out_dir)


def mar_model_name_mnist_renamed(out_dir: Path) -> Built:
    """An archive made with --model-name mnist, renamed to model.mar: TorchServe registers it as 'mnist'."""
    import torch

    mar = export_torch(_linear(), out_dir, example_inputs=torch.zeros(1, 4), model_name="mnist")
    mar.rename(out_dir / "model.mar")
    return Built(out_dir)


# --- mar.handler-missing / mar.handler-invalid ---------------------------------------------------
def mar_handler_not_packaged(out_dir: Path) -> Built:
    """MANIFEST handler 'demo_service:handle' with no demo_service.py in the archive (pytorch/serve#463)."""
    _patch_manifest(_base_archive(out_dir), handler="demo_service:handle")
    return Built(out_dir)


def mar_handler_imports_missing_module(out_dir: Path) -> Built:
    """A custom handler whose first import is a package the image lacks (pytorch/serve#1010, #577)."""
    tmp = _scratch()
    handler = _write(tmp, "my_handler.py", """
        import gdc_sandbox_not_installed_pkg  # e.g. cv2 / transformers missing from the image

        from ts.torch_handler.base_handler import BaseHandler


        class MyHandler(BaseHandler):
            pass
        """)
    archive_mar(_torchscript(tmp), out_dir, handler=str(handler))
    return Built(out_dir)


# --- mar.model-file-mismatch ---------------------------------------------------------------------
def mar_state_dict_without_model_file(out_dir: Path) -> Built:
    """torch.save(state_dict) archived with base_handler and no --model-file (pytorch/serve#1788)."""
    import torch

    tmp = _scratch()
    weights = tmp / "model.pt"
    torch.save(_linear().state_dict(), str(weights))
    archive_mar(weights, out_dir, handler="base_handler")
    return Built(out_dir)


# --- mar.pickle-main -----------------------------------------------------------------------------
def mar_pickle_from_main(out_dir: Path) -> Built:
    """torch.save(model) of a class defined in the training script (__main__), loaded by a custom handler."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x: Any) -> Any:
            return self.fc(x)

    # What `python train.py` does: the class lives in __main__, and pickle records __main__.Net.
    main = sys.modules["__main__"]
    Net.__module__, Net.__qualname__ = "__main__", "Net"
    had = hasattr(main, "Net")
    old = getattr(main, "Net", None)
    main.Net = Net  # type: ignore[attr-defined]
    tmp = _scratch()
    try:
        torch.save(Net().eval(), str(tmp / "model.pt"))
    finally:
        if had:
            main.Net = old  # type: ignore[attr-defined]
        else:
            del main.Net  # type: ignore[attr-defined]
    handler = _write(tmp, "full_model_handler.py", """
        import os

        import torch
        from ts.torch_handler.base_handler import BaseHandler


        class FullModelHandler(BaseHandler):
            def initialize(self, context):
                model_dir = context.system_properties.get("model_dir")
                path = os.path.join(model_dir, context.manifest["model"]["serializedFile"])
                self.model = torch.load(path, map_location="cpu", weights_only=False)
                self.model.eval()
                self.initialized = True
        """)
    archive_mar(tmp / "model.pt", out_dir, handler=str(handler))
    return Built(out_dir)


# --- torch.raw-weights ---------------------------------------------------------------------------
def raw_torchscript_pt(out_dir: Path) -> Built:
    """A TorchScript model.pt uploaded as is, without torch-model-archiver."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _torchscript(out_dir)
    return Built(out_dir)


# --- mar.not-zip / mar.no-manifest / mar.serialized-missing --------------------------------------
def mar_tgz_renamed(out_dir: Path) -> Built:
    """An archive made with --archive-format tgz (model.tar.gz) renamed to model.mar."""
    import subprocess

    tmp = _scratch()
    ts = _torchscript(tmp)
    archiver = Path(sys.executable).with_name("torch-model-archiver")
    subprocess.run([str(archiver), "--model-name", "model", "--version", "1.0", "--serialized-file", str(ts),
                    "--handler", "base_handler", "--export-path", str(tmp), "--archive-format", "tgz", "-f"],
                   check=True, capture_output=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    (tmp / "model.tar.gz").rename(out_dir / "model.mar")
    return Built(out_dir)


def mar_zipped_by_hand(out_dir: Path) -> Built:
    """model.pt zipped by hand as model.mar, no MAR-INF/MANIFEST.json (pytorch/serve#23)."""
    tmp = _scratch()
    ts = _torchscript(tmp)
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_dir / "model.mar", "w") as zf:
        zf.write(ts, "model.pt")
    return Built(out_dir)


def mar_serialized_not_packed(out_dir: Path) -> Built:
    """MANIFEST serializedFile names a file the archive does not hold (the weights were left out)."""
    _patch_manifest(_base_archive(out_dir), serializedFile="weights.pt")
    return Built(out_dir)


# --- mar.model-file-invalid / mar.weights-only ---------------------------------------------------
_TWO_CLASSES = """
    import torch


    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(x)


    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()

        def forward(self, x):
            return self.block(x)
    """


def mar_model_file_two_classes(out_dir: Path) -> Built:
    """--model-file defining two nn.Module classes (pytorch/serve#964: 'Expected only one class')."""
    import torch

    tmp = _scratch()
    model_file = _write(tmp, "model.py", _TWO_CLASSES)
    torch.save(torch.nn.Sequential(torch.nn.Linear(4, 2)).state_dict(), str(tmp / "model.pt"))
    archive_mar(tmp / "model.pt", out_dir, handler="base_handler", model_file=model_file)
    return Built(out_dir)


def mar_full_model_pickle(out_dir: Path) -> Built:
    """torch.save(model) (not a state_dict) of a class from an importable model.py, with base_handler
    (pytorch/serve#3360: torch>=2.6 torch.load(weights_only=True) refuses custom classes)."""
    tmp = _scratch()
    model_file, _ = save_whole_model(tmp, "model")
    archive_mar(tmp / "model.pt", out_dir, handler="base_handler", model_file=model_file)
    return Built(out_dir)


# --- mar.unsafe-path / mar.extra-files-nested --------------------------------------------------------
def mar_with_parent_path_entry(out_dir: Path) -> Built:
    """A hand-patched archive holding an entry '../index_to_name.json' (a zip-slip path)."""
    with zipfile.ZipFile(_base_archive(out_dir), "a") as zf:
        zf.writestr("../index_to_name.json", '{"0": "cat", "1": "dog"}')
    return Built(out_dir)


def mar_handler_imports_package_path(out_dir: Path) -> Built:
    """--extra-files utils/prep.py and a handler doing `from utils.prep import scale` (pytorch/serve#1197)."""
    tmp = _scratch()
    (tmp / "utils").mkdir()
    prep = _write(tmp / "utils", "prep.py", "def scale(x):\n    return x\n")
    handler = _write(tmp, "my_handler.py", """
        from utils.prep import scale

        from ts.torch_handler.base_handler import BaseHandler


        class MyHandler(BaseHandler):
            pass
        """)
    archive_mar(_torchscript(tmp), out_dir, handler=str(handler), extra_files=[prep])
    return Built(out_dir)


# --- mar.training-mode -----------------------------------------------------------------------------
def mar_traced_in_training_mode(out_dir: Path) -> Built:
    """BatchNorm1d(1) -> Linear(1, 1) (w=2, b=0.5) traced without model.eval() (pytorch/pytorch#71929).

    The trace bakes training=True into torch.batch_norm; TorchServe's model.eval() cannot undo it, so each
    request is normalized by its own batch: a lone instance always answers the bias, 0.5.
    """
    import torch

    linear = torch.nn.Linear(1, 1)
    with torch.no_grad():
        linear.weight.fill_(2.0)
        linear.bias.fill_(0.5)
    model = torch.nn.Sequential(torch.nn.BatchNorm1d(1), linear)  # still in train(): the mistake
    traced = torch.jit.trace(model, torch.tensor([[1.0], [3.0]]), check_trace=False)
    weights = _scratch() / "model.pt"
    traced.save(str(weights))
    archive_mar(weights, out_dir, handler="base_handler")
    return Built(out_dir)
