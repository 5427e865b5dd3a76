"""Session-scoped artifact builders for the checker tests: TF models come from one subprocess run."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
HANDLER = "from ts.torch_handler.base_handler import BaseHandler\n\n\nclass Handler(BaseHandler):\n    pass\n"
MODEL_PY = (
    "import torch\n\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.fc = torch.nn.Linear(2, 1)\n\n    def forward(self, x):\n        return self.fc(x)\n"
)


@pytest.fixture(scope="session")
def tf_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of tiny SavedModels (see build_tf_models.py), built once per session."""
    out = tmp_path_factory.mktemp("tf_models")
    env = {
        **os.environ,
        "KERAS_HOME": str(tmp_path_factory.mktemp("keras_home")),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(
        [sys.executable, str(HERE / "build_tf_models.py"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (out / "DONE").exists(), proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def torch_blobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Serialized torch files: TorchScript (scripted; traced in train and eval mode), state_dict, CUDA-tagged state_dict, __main__ and module pickles."""
    import torch

    tmp = tmp_path_factory.mktemp("torch")
    lin = torch.nn.Linear(2, 1)
    blobs: dict[str, bytes] = {}
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(lin), buf)
    blobs["script"] = buf.getvalue()
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.5))
    for mode in ("train", "eval"):
        buf = io.BytesIO()
        torch.jit.save(torch.jit.trace(getattr(net, mode)(), torch.ones(3, 2), check_trace=False), buf)
        blobs[f"traced_{mode}"] = buf.getvalue()
    buf = io.BytesIO()
    torch.save(lin.state_dict(), buf)
    blobs["state_dict"] = buf.getvalue()
    blobs["cuda_state_dict"] = _retag_cuda(blobs["state_dict"])
    main = tmp / "main.pt"
    code = f"import torch\n{MODEL_PY}\ntorch.save(Net(), {str(main)!r})\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    blobs["main_pickle"] = main.read_bytes()
    (tmp / "mymodel.py").write_text(MODEL_PY)
    mod = tmp / "mod.pt"
    code = f"import sys, torch\nsys.path.insert(0, {str(tmp)!r})\nimport mymodel\n"
    code += f"torch.save(mymodel.Net(), {str(mod)!r})\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    blobs["module_pickle"] = mod.read_bytes()
    return blobs


def _retag_cuda(data: bytes) -> bytes:
    """Rewrite the storage location 'cpu' to 'cuda:0' inside data.pkl (length-prefixed string)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.endswith("data.pkl"):
                body = body.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
                assert b"cuda:0" in body
            dst.writestr(info.filename, body)
    return out.getvalue()


def write_mar(
    path: Path,
    *,
    files: dict[str, bytes | str] | None = None,
    model: dict | None = None,
    manifest: bytes | None = None,
    drop: tuple[str, ...] = (),
) -> Path:
    """Write a .mar like torch-model-archiver does: files at the top plus MAR-INF/MANIFEST.json."""
    base_model = {"modelName": "model", "serializedFile": "model.pt", "handler": "handler.py", "modelVersion": "1.0"}
    base_model.update(model or {})
    entries: dict[str, bytes | str] = {"handler.py": HANDLER}
    entries.update(files or {})
    if manifest is None:
        manifest = json.dumps(
            {
                "runtime": "python",
                "model": {k: v for k, v in base_model.items() if v is not None},
                "archiverVersion": "0.12.0",
            }
        ).encode()
    entries["MAR-INF/MANIFEST.json"] = manifest
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in entries.items():
            if name not in drop:
                zf.writestr(name, body)
    return path


@pytest.fixture
def mar_dir(tmp_path: Path, torch_blobs: dict[str, bytes]):
    """Factory: ``mar_dir(name="model.mar", **write_mar kwargs)`` -> a version folder holding the archive."""

    def make(name: str = "model.mar", blob: str = "script", **kwargs) -> Path:
        files = {"model.pt": torch_blobs[blob], **kwargs.pop("files", {})}
        write_mar(tmp_path / "v" / name, files=files, **kwargs)
        return tmp_path / "v"

    return make
