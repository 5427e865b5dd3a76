"""One bad and one near-identical good artifact for every code in CODES."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.artifacts import check_artifact, layout, mar, tfproto
from sandbox.diagnostics import CODES
from sandbox.images import resolve
from tests.checker.conftest import MODEL_PY, write_mar

LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 1234\n"


@dataclass
class Ctx:
    tf: Path
    tmp: Path
    mar_dir: Callable[..., Path]
    blobs: dict[str, bytes]
    monkeypatch: pytest.MonkeyPatch

    def copy(self, name: str, dest: str | None = None) -> Path:
        target = self.tmp / (dest or name)
        shutil.copytree(self.tf / name, target)
        return target


def _patch_pb(folder: Path, edit: Callable[[object], None]) -> Path:
    pb = folder / "saved_model.pb"
    sm = tfproto.parse_binary(tfproto.SavedModel, pb.read_bytes())
    edit(sm)
    pb.write_bytes(sm.SerializeToString())
    return folder


def _add_attr(sm) -> None:
    for f in sm.meta_graphs[0].graph_def.library.function:
        for node in f.node_def:
            if node.op == "MatMul":
                node.attr["grad_x_precision"].b = True


def _set_version(sm) -> None:
    sm.meta_graphs[0].meta_info_def.tensorflow_version = "2.99.0"


def _handler_two_classes(c: Ctx, good: bool) -> Path:
    body = "from ts.torch_handler.base_handler import BaseHandler\n\n\nclass Handler(BaseHandler):\n    pass\n"
    if not good:
        body += "\n\nclass Helper:\n    pass\n"
    return c.mar_dir(files={"handler.py": body})


def _custom_loader(c: Ctx, blob: str, mapped: bool) -> Path:
    arg = ", map_location='cpu'" if mapped else ""
    handler = (
        "import torch\nfrom ts.torch_handler.base_handler import BaseHandler\n\n\nclass Handler(BaseHandler):\n"
        f"    def initialize(self, ctx):\n        self.sd = torch.load('model.pt'{arg})\n"
    )
    return c.mar_dir(blob=blob, files={"handler.py": handler, "mymodel.py": MODEL_PY})


def _nested_import(c: Ctx, good: bool) -> Path:
    imp = "from prep import f" if good else "from utils.prep import f"
    handler = f"{imp}\nfrom ts.torch_handler.base_handler import BaseHandler\n\n\nclass H(BaseHandler):\n    pass\n"
    return c.mar_dir(files={"handler.py": handler, "prep.py": "def f():\n    return 1\n"})


def _script_version(c: Ctx, version: bytes) -> Path:
    import io
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(c.blobs["script"]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, version if info.filename.endswith("/version") else src.read(info))
    return c.mar_dir(files={"model.pt": out.getvalue()})


def _too_large(c: Ctx, good: bool) -> Path:
    folder = c.copy("good")
    with (folder / "assets" / "huge.bin").open("wb") as fh:
        fh.truncate((9 if good else 11) * 1024**3)  # sparse: no disk used
    return folder


def _mar_too_large(c: Ctx, good: bool) -> Path:
    if not good:
        c.monkeypatch.setattr(mar, "MAX_ENTRY_BYTES", 100)
    return c.mar_dir()


def _lfs(c: Ctx, good: bool) -> Path:
    folder = c.copy("good")
    if not good:
        (folder / "variables" / "variables.data-00000-of-00001").write_bytes(LFS)
    return folder


def _nested(c: Ctx, good: bool) -> Path:
    if good:
        return c.copy("good", "v")
    shutil.copytree(c.tf / "good", c.tmp / "v" / "1")
    return c.tmp / "v"


def _zipped(c: Ctx, good: bool) -> Path:
    folder = c.tmp / "v"
    if good:
        return c.copy("good", "v")
    shutil.make_archive(str(c.tmp / "model"), "zip", root_dir=c.tf, base_dir="good")
    folder.mkdir()
    shutil.move(str(c.tmp / "model.zip"), folder / "model.zip")
    return folder


def _pbtxt(c: Ctx, good: bool) -> Path:
    folder = c.copy("good")
    if not good:
        sm = tfproto.parse_binary(tfproto.SavedModel, (folder / "saved_model.pb").read_bytes())
        (folder / "saved_model.pbtxt").write_text(tfproto.to_text(sm))
        (folder / "saved_model.pb").unlink()
    return folder


def _warmup(c: Ctx, good: bool) -> Path:
    folder = c.copy("good")
    (folder / "assets.extra").mkdir()
    src = c.tf / ("warmup_good.tfrecord" if good else "warmup_bad.tfrecord")
    shutil.copy(src, folder / "assets.extra" / "tf_serving_warmup_requests")
    return folder


def _not_artifact(c: Ctx, good: bool) -> Path:
    """A folder of training logs, more files than the checker looks at below a folder without a model at its top."""
    folder = c.copy("good", "tree") if good else c.tmp / "tree"
    write_files(folder / "logs", layout.SEARCH_ENTRIES + 50)
    return folder


def write_files(folder: Path, count: int, content: bytes = b"loss 0.1\n") -> None:
    """``count`` small files in sub-folders of 50 under ``folder``."""
    for i in range(count):
        sub = folder / f"run{i // 50:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"events{i % 50:02d}.txt").write_bytes(content)


def _empty(c: Ctx, good: bool) -> Path:
    if good:
        return c.copy("good")
    (c.tmp / "empty" / "1").mkdir(parents=True)  # only an empty 'folder marker'
    return c.tmp / "empty"


def _no_model(c: Ctx, good: bool) -> Path:
    folder = c.copy("good")
    if not good:
        (folder / "saved_model.pb").rename(folder / "model.pb")
    return folder


def _dup(c: Ctx, good: bool) -> Path:
    folder = c.copy("good")
    if not good:
        shutil.copytree(c.tf / "good", folder / "1")
    return folder


def _mixed(c: Ctx, good: bool) -> Path:
    folder = c.copy("good")
    if not good:
        write_mar(folder / "model.mar", files={"model.pt": c.blobs["script"]})
    return folder


# code -> builder(ctx, good) -> (path, image name or None)
Case = Callable[[Ctx, bool], "tuple[Path, str | None] | Path"]
CASES: dict[str, Case] = {
    "layout.empty": _empty,
    "layout.no-model-file": _no_model,
    "layout.not-an-artifact": _not_artifact,
    "layout.nested": _nested,
    "layout.lfs-pointer": _lfs,
    "layout.duplicate-model": _dup,
    "layout.mixed-frameworks": _mixed,
    "layout.file-not-dir": lambda c, g: c.copy("good") / ("" if g else "saved_model.pb"),
    "layout.image-mismatch": lambda c, g: (c.copy("good"), "tf2-cpu.2-18" if g else "pytorch-cpu.2-4"),
    "layout.too-large": _too_large,
    "tf.keras-file": lambda c, g: c.copy("keras_export" if g else "keras_file"),
    "tf.checkpoint-only": lambda c, g: c.copy("good" if g else "ckpt"),
    "tf.pbtxt": _pbtxt,
    "tf.unparseable": lambda c, g: c.copy("good" if g else "frozen"),
    "tf.no-serve-tag": lambda c, g: c.copy("good" if g else "train_tag"),
    "tf.no-serving-default": lambda c, g: c.copy("good" if g else "custom_key"),
    "tf.variables-missing": lambda c, g: _drop(
        c.copy("good"), [] if g else ["variables/variables.data-00000-of-00001"]
    ),
    "tf.variables-unsaved": lambda c, g: c.copy("keras_in_module_tracked" if g else "keras_in_module_untracked"),
    "tf.asset-missing": lambda c, g: _drop(c.copy("vocab"), [] if g else ["assets/vocab.txt"]),
    "tf.op-unsupported": lambda c, g: c.copy("good" if g else "pyfunc"),
    "tf.attr-unsupported": lambda c, g: c.copy("good") if g else _patch_pb(c.copy("good"), _add_attr),
    "tf.newer-than-image": lambda c, g: c.copy("good") if g else _patch_pb(c.copy("good"), _set_version),
    "tf.registry-approximate": lambda c, g: (c.copy("good"), "tf2-cpu.2-18" if g else "tf2-cpu.2-6"),
    "tf.warmup-invalid": _warmup,
    "tf.input-no-batch-dim": lambda c, g: c.copy("good" if g else "nobatch"),
    "tf.output-no-batch-dim": lambda c, g: c.copy("good" if g else "nobatch"),
    "tf.generated-names": lambda c, g: c.copy("good" if g else "tuple_outputs"),
    "tf.string-input-b64": lambda c, g: c.copy("good" if g else "vocab"),
    "tf.double-base64": lambda c, g: c.copy("vocab" if g else "b64"),
    "tf.parsing-signature": lambda c, g: c.copy("feature_dict" if g else "parse_example"),
    "tf.training-mode": lambda c, g: c.copy("keras_inference" if g else "keras_training"),
    "tf.payload-large": lambda c, g: c.copy("good" if g else "big"),
    "torch.raw-weights": lambda c, g: c.mar_dir() if g else _raw(c),
    "mar.wrong-filename": lambda c, g: c.mar_dir(name="model.mar" if g else "mnist.mar"),
    "mar.not-zip": lambda c, g: c.mar_dir() if g else _garbage_mar(c),
    "mar.no-manifest": lambda c, g: c.mar_dir(drop=() if g else ("MAR-INF/MANIFEST.json",)),
    "mar.model-name": lambda c, g: c.mar_dir(model={"modelName": "model" if g else "mnist"}),
    "mar.handler-missing": lambda c, g: c.mar_dir(model={"handler": "handler.py" if g else "demo_service:handle"}),
    "mar.handler-invalid": _handler_two_classes,
    "mar.serialized-missing": lambda c, g: c.mar_dir(model={"serializedFile": "model.pt" if g else "weights.pt"}),
    "mar.model-file-mismatch": lambda c, g: c.mar_dir(blob="script" if g else "state_dict"),
    "mar.model-file-invalid": lambda c, g: c.mar_dir(
        blob="state_dict",
        model={"modelFile": "mymodel.py"},
        files={"mymodel.py": MODEL_PY + ("" if g else "\n\nclass Extra:\n    pass\n")},
    ),
    "mar.pickle-main": lambda c, g: _custom_loader(c, "state_dict" if g else "main_pickle", True),
    "mar.torch-version": lambda c, g: _script_version(c, b"3\n" if g else b"12\n"),
    "mar.training-mode": lambda c, g: c.mar_dir(blob="traced_eval" if g else "traced_train"),
    "mar.unsafe-path": lambda c, g: c.mar_dir(files={("extra.txt" if g else "../evil.txt"): "x"}),
    "mar.requirements": lambda c, g: c.mar_dir(
        files={"requirements.txt": "opencv-python\n"}, model={"requirementsFile": None if g else "requirements.txt"}
    ),
    "mar.weights-only": lambda c, g: _custom_loader(c, "state_dict" if g else "module_pickle", True),
    "mar.cuda-tensors": lambda c, g: _custom_loader(c, "cuda_state_dict", g),
    "mar.extra-files-nested": _nested_import,
    "mar.too-large": _mar_too_large,
}


def _drop(folder: Path, rels: list[str]) -> Path:
    for rel in rels:
        (folder / rel).unlink()
    return folder


def _raw(c: Ctx) -> Path:
    folder = c.tmp / "raw"
    folder.mkdir()
    (folder / "model.pt").write_bytes(c.blobs["state_dict"])
    return folder


def _garbage_mar(c: Ctx) -> Path:
    folder = c.tmp / "garbage"
    folder.mkdir()
    (folder / "model.mar").write_bytes(b"\x1f\x8b\x08 not really a gzip either" * 10)
    return folder


_EXAMPLES: dict[str, str] = {}
"""Rendered bad-case diagnostics; ``GDC_CHECKER_DUMP_EXAMPLES=path`` writes them for docs/diagnostics.md."""


@pytest.fixture(scope="module", autouse=True)
def _dump_examples():
    yield
    target = os.environ.get("GDC_CHECKER_DUMP_EXAMPLES")
    if target:
        Path(target).write_text(json.dumps(_EXAMPLES, indent=1))


@pytest.fixture
def ctx(tf_models: Path, tmp_path: Path, mar_dir, torch_blobs, monkeypatch) -> Ctx:
    return Ctx(tf_models, tmp_path, mar_dir, torch_blobs, monkeypatch)


def _run(case: Case, c: Ctx, good: bool):
    got = case(c, good)
    path, image = got if isinstance(got, tuple) else (got, None)
    report = check_artifact(path, resolve(image) if image else None)
    json.dumps(report.to_dict())
    return report


@pytest.mark.parametrize("code", sorted(CODES))
def test_bad_artifact_triggers_code(code: str, ctx: Ctx) -> None:
    assert code in CASES, f"no test case for {code}: add one to CASES"
    report = _run(CASES[code], ctx, good=False)
    assert code in report.codes(), report.render_text()
    d = next(d for d in report.diagnostics if d.code == code)
    assert d.message, d
    assert d.hint, d
    assert not re.search(r"\{[a-z_]+\}", d.hint), d
    _EXAMPLES[code] = d.render()
    if CODES[code].severity == "error" and d.severity == "error":
        assert not report.ok


@pytest.mark.parametrize("code", sorted(CODES))
def test_good_artifact_does_not(code: str, ctx: Ctx) -> None:
    report = _run(CASES[code], ctx, good=True)
    assert code not in report.codes(), report.render_text()


@pytest.mark.parametrize(
    ("artifact", "evidence"),
    [
        ("keras_training", ["StatelessRandomUniformV2", "writes model variables (AssignVariableOp"]),
        ("tf1_training", ["RandomUniform", "is_training=true"]),
    ],
)
def test_training_mode_names_its_evidence(tf_models: Path, artifact: str, evidence: list[str]) -> None:
    report = check_artifact(tf_models / artifact)
    found = [d.message for d in report.diagnostics if d.code == "tf.training-mode"]
    assert len(found) == 1, report.render_text()
    for text in evidence:
        assert text in found[0]
    assert report.ok  # a warning: the model serves, with the wrong numbers


def test_parsing_signature_names_the_features(tf_models: Path) -> None:
    (message,) = [d.message for d in check_artifact(tf_models / "parse_example").diagnostics if d.code == "tf.parsing-signature"]
    assert "input 'examples' (DT_STRING) feeds ParseExampleV2 (features age)" in message
    assert "does not have named input: age" in message


def test_cases_match_catalog() -> None:
    assert set(CASES) == set(CODES)


def test_docs_cover_every_code() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "diagnostics.md").read_text()
    missing = [c for c in CODES if f"`{c}`" not in text]
    assert not missing
