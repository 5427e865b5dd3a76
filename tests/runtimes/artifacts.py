"""Tiny artifacts that tell the images' runtimes apart, built with the frameworks of the sandbox's own .venv.

Each builder writes a version folder and returns it; the archives are made by the real ``torch-model-archiver``.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

from sandbox.export import archive_mar, export_tensorflow
from sandbox.testing.pickled import save_whole_model

VERSIONS_HANDLER = """
import platform

import torch
import torchvision


class Versions:
    def initialize(self, context):
        self.initialized = True

    def handle(self, data, context):
        return [[torch.__version__, platform.python_version(), torchvision.__version__] for _ in data]
"""

PLAIN_LOAD_HANDLER = """
import os

import torch


class WholeModel:
    def initialize(self, context):
        model_dir = context.system_properties["model_dir"]
        self.model = torch.load(os.path.join(model_dir, "model.pt"))  # plain torch.load: the version's default
        self.model.eval()

    def handle(self, data, context):
        with torch.no_grad():
            return self.model(torch.tensor(data, dtype=torch.float32)).tolist()
"""

#: Handlers that Python 3.9 cannot import, each next to the way it fails.
PY39_BREAKERS = {
    "match": """
class Handler:
    def initialize(self, context):
        pass

    def handle(self, data, context):
        match data:
            case [first, *rest]:
                return [first]
        return data
""",
    "union-annotation": """
class Handler:
    def initialize(self, context) -> None:
        pass

    def handle(self, data: list | None, context):
        return data
""",
    "tomllib": """
import tomllib


class Handler:
    def initialize(self, context):
        pass

    def handle(self, data, context):
        return data
""",
}


def _write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def _linear() -> Any:
    import torch

    torch.manual_seed(7)
    return torch.nn.Linear(4, 2).eval()


def _script(module: Any, path: Path) -> Path:
    import torch

    torch.jit.script(module).save(str(path))
    return path


def custom_handler(out: Path, scratch: Path, source: str, extra: dict[str, str] | None = None) -> Path:
    """A TorchScript Linear(4->2) archived with the custom handler ``source`` (and extra .py files)."""
    serialized = _script(_linear(), scratch / "model.pt")
    files = [_write(scratch, name, text) for name, text in (extra or {}).items()]
    archive_mar(serialized, out, handler=str(_write(scratch, "handler.py", source)), extra_files=files)
    return out


def torchscript_linear(out: Path, scratch: Path) -> Path:
    """The plain case: TorchScript Linear(4->2) with the built-in base_handler."""
    archive_mar(_script(_linear(), scratch / "model.pt"), out, handler="base_handler")
    return out


def whole_pickle_plain_load(out: Path, scratch: Path, handler_source: str = PLAIN_LOAD_HANDLER) -> Path:
    """``torch.save(model)`` of a class from mymodel.py (shipped), loaded by a handler with plain ``torch.load``."""
    scratch.mkdir(parents=True, exist_ok=True)
    module_file, serialized = save_whole_model(scratch, "mymodel")
    handler = _write(scratch, "handler.py", handler_source)
    archive_mar(serialized, out, handler=str(handler), extra_files=[module_file])
    return out


def torchscript_new_operator(out: Path, scratch: Path) -> Path:
    """TorchScript calling ``aten::hash_tensor`` (new after torch 2.4): 'Unknown builtin op' on older torch."""
    import torch

    source = _write(scratch, "hashnet.py", """
        import torch


        class HashNet(torch.nn.Module):
            def forward(self, x):
                return torch.hash_tensor(x).float() + x.sum()
        """)
    sys.path.insert(0, str(scratch))
    try:
        import hashnet

        torch.jit.script(hashnet.HashNet()).save(str(scratch / "model.pt"))
    finally:
        sys.path.remove(str(scratch))
        sys.modules.pop("hashnet", None)
    assert source.exists()
    archive_mar(scratch / "model.pt", out, handler="base_handler")
    return out


def torchscript_future_format(out: Path, scratch: Path) -> Path:
    """TorchScript whose ``version`` record says 11: newer than any torch 2.x reader (max 10)."""
    plain = _script(_linear(), scratch / "plain.pt")
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(scratch / "model.pt", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, b"11\n" if info.filename.endswith("/version") else data)
    archive_mar(scratch / "model.pt", out, handler="base_handler")
    return out


def conv_classifier() -> Any:
    """A tiny 10-class image classifier (3x224x224 in), deterministic."""
    import torch

    torch.manual_seed(3)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, kernel_size=7, stride=4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 10),
    ).eval()


def image_classifier(out: Path, scratch: Path) -> Path:
    """TorchScript classifier archived with TorchServe's built-in ``image_classifier`` handler."""
    import torch

    path = scratch / "model.pt"
    torch.jit.trace(conv_classifier(), torch.zeros(1, 3, 224, 224)).save(str(path))
    archive_mar(path, out, handler="image_classifier")
    return out


def png_bytes() -> bytes:
    """A 40x30 RGB PNG with a gradient and a square, so the classes get distinct scores."""
    from PIL import Image

    image = Image.new("RGB", (40, 30))
    image.putdata([((x * 6) % 256, (y * 8) % 256, ((x + y) * 3) % 256) for y in range(30) for x in range(40)])
    image.paste((250, 10, 10), (5, 5, 15, 15))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


TOPK_SCRIPT = """
import io, json, sys
import torch
from PIL import Image
from torchvision import transforms

model = torch.jit.load(sys.argv[1])
pipeline = transforms.Compose([
    transforms.Resize(256),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
])
batch = pipeline(Image.open(io.BytesIO(sys.stdin.buffer.read())).convert("RGB")).unsqueeze(0)
with torch.no_grad():
    top = torch.topk(torch.softmax(model(batch), dim=1), 5, dim=1)
print(json.dumps([{str(int(i)): float(p) for p, i in zip(top.values[0], top.indices[0])}]))
"""


def image_classifier_topk(python: Path, serialized: Path, png: bytes) -> list[dict[str, float]]:
    """What image_classifier should answer: torchvision's own transforms, softmax and top 5, run directly (no
    TorchServe) by ``python``, the image's interpreter (the sandbox's .venv has no torchvision)."""
    proc = subprocess.run([str(python), "-c", TOPK_SCRIPT, str(serialized)], input=png, capture_output=True,
                          timeout=300, check=True)
    return list(json.loads(proc.stdout))


def keras3_dense(out: Path, scratch: Path) -> Path:
    """A Keras 3 Dense(4->2) exported with model.export (TF 2.18: VarHandleOp nodes carry debug_name)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    export_tensorflow(model, out)
    (scratch / "reference.json").write_text(json.dumps(model.predict(keras.ops.ones((1, 4)), verbose=0).tolist()))
    return out


def tf_new_op(out: Path, scratch: Path) -> Path:
    """A SavedModel using DatasetFingerprint, an op TF 2.14 does not register."""
    import tensorflow as tf

    class WithFingerprint(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x: Any) -> Any:
            fp = tf.data.Dataset.from_tensor_slices(x).fingerprint()
            return {"y": x * 2.0, "fingerprint": tf.fill(tf.shape(x)[:1], fp)}

    module = WithFingerprint()
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    return out
