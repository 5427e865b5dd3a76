"""Engine API, safety (no TensorFlow import, no raising on bad bytes) and fuzzing of the parsers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.artifacts import check_artifact, tf_ops, tf_schema, tfproto
from sandbox.errors import UsageError
from sandbox.images import resolve
from tests.checker.conftest import write_mar

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        if buf:
            buf[pos % len(buf)] = value
    return bytes(buf[: max(0, len(buf) - cut)])


EDITS = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8)


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        check_artifact(tmp_path / "nope")


def test_report_api(tf_models: Path) -> None:
    report = check_artifact(tf_models / "custom_key")
    assert report.framework == "tf"
    assert report.image.name == "tf2-cpu.2-18"
    assert not report.ok
    body = report.to_dict()
    assert set(body) == {"ok", "framework", "image", "diagnostics"}
    assert set(body["diagnostics"][0]) == {"code", "severity", "message", "hint", "path"}
    text = report.render_text()
    assert "error[tf.no-serving-default] signature 'serving_default' not found; signatures: predict" in text
    assert "\n  at saved_model.pb\n  hint: " in text


def test_good_models_are_clean(tf_models: Path) -> None:
    for name in ("good", "keras_export"):
        report = check_artifact(tf_models / name)
        assert report.diagnostics == [], report.render_text()


def test_checker_never_imports_tensorflow_or_torch(tf_models: Path, tmp_path: Path) -> None:
    write_mar(tmp_path / "m" / "model.mar", files={"model.pt": b"PK\x03\x04junk"})
    code = (
        "import sys; from pathlib import Path; from sandbox.artifacts import check_artifact;"
        f"check_artifact(Path({str(tf_models / 'good')!r})); check_artifact(Path({str(tmp_path / 'm')!r}));"
        "bad = [m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shipped_descriptor_is_the_schema() -> None:
    """sandbox/data/tf_subset.desc is what tf_schema.build_file makes of the table (regenerate it after an edit:
    `python -m sandbox.artifacts.tf_schema`)."""
    assert tf_schema.DESCRIPTOR_FILE.read_bytes() == tf_schema.build_file()


def test_same_verdicts_with_protobufs_pure_python_backend(tf_models: Path) -> None:
    """tfproto builds its classes straight from upb, protobuf's C backend; the public pure-Python path it takes
    on any other backend reads every artifact the same."""
    names = sorted(p.name for p in tf_models.iterdir() if p.is_dir())
    code = (
        "import json, sys; from pathlib import Path; from sandbox.artifacts import check_artifact, tfproto;"
        "from google.protobuf.internal import api_implementation; assert api_implementation.Type() == 'python';"
        f"print(json.dumps([check_artifact(Path({str(tf_models)!r}) / n).to_dict() for n in {names!r}]))"
    )
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from google.protobuf.internal import api_implementation

    assert api_implementation.Type() == "upb"  # this process reads them through upb
    assert json.loads(proc.stdout) == [check_artifact(tf_models / n).to_dict() for n in names]


def test_op_newer_than_image(tf_models: Path, tmp_path: Path) -> None:
    new_ops = sorted(set(tf_ops._load("2.18")) - set(tf_ops._load("2.14")))
    assert new_ops
    folder = tmp_path / "m"
    shutil.copytree(tf_models / "good", folder)
    sm = tfproto.parse_binary(tfproto.SavedModel, (folder / "saved_model.pb").read_bytes())
    node = next(n for f in sm.meta_graphs[0].graph_def.library.function for n in f.node_def if n.op == "MatMul")
    node.op = new_ops[0]
    (folder / "saved_model.pb").write_bytes(sm.SerializeToString())
    old = check_artifact(folder, resolve("tf2-cpu.2-14"))
    msg = next(d.message for d in old.diagnostics if d.code == "tf.op-unsupported")
    assert "added in TF 2.18" in msg or "added in TF 2.1" in msg
    assert "tf.op-unsupported" not in check_artifact(folder, resolve("tf2-cpu.2-18")).codes()


def test_unknown_custom_op_names_library(tf_models: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tf_models / "good", folder)
    sm = tfproto.parse_binary(tfproto.SavedModel, (folder / "saved_model.pb").read_bytes())
    node = next(n for f in sm.meta_graphs[0].graph_def.library.function for n in f.node_def if n.op == "MatMul")
    node.op = "SentencepieceOp"
    (folder / "saved_model.pb").write_bytes(sm.SerializeToString())
    d = next(d for d in check_artifact(folder).diagnostics if d.code == "tf.op-unsupported")
    assert "sentencepiece" in d.message


def test_single_mar_file_and_keras_file(tmp_path: Path, torch_blobs: dict[str, bytes]) -> None:
    mar = write_mar(tmp_path / "model.mar", files={"model.pt": torch_blobs["script"]})
    report = check_artifact(mar)
    assert report.ok
    assert report.framework == "torch"
    assert report.image.name == "pytorch-cpu.2-4"
    (tmp_path / "m.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    assert check_artifact(tmp_path / "m.h5").codes() == ["tf.keras-file"]


@FUZZ
@given(edits=EDITS, cut=st.integers(0, 64))
def test_fuzz_saved_model(tf_models: Path, tmp_path_factory: pytest.TempPathFactory, edits, cut) -> None:
    folder = tmp_path_factory.mktemp("fuzz_sm")
    shutil.copytree(tf_models / "good", folder, dirs_exist_ok=True)
    pb = folder / "saved_model.pb"
    pb.write_bytes(_mutate(pb.read_bytes(), edits, cut))
    index = folder / "variables" / "variables.index"
    index.write_bytes(_mutate(index.read_bytes(), edits[:2], cut % 8))
    json.dumps(check_artifact(folder).to_dict())


@FUZZ
@given(edits=EDITS, cut=st.integers(0, 64), target=st.sampled_from(["outer", "inner", "manifest"]))
def test_fuzz_mar(tmp_path_factory: pytest.TempPathFactory, torch_blobs: dict[str, bytes], edits, cut, target) -> None:
    folder = tmp_path_factory.mktemp("fuzz_mar")
    inner = torch_blobs["state_dict"] if target == "inner" else torch_blobs["script"]
    manifest = None
    if target == "inner":
        inner = _mutate(inner, edits, cut)
    if target == "manifest":
        raw = b'{"runtime": "python", "model": {"modelName": "model", "serializedFile": "model.pt", "handler": "h.py"}}'
        manifest = _mutate(raw, edits, cut)
    mar = write_mar(
        folder / "model.mar",
        files={"model.pt": inner},
        manifest=manifest,
        model={"modelFile": "x.py"} if target == "inner" else None,
    )
    if target == "outer":
        mar.write_bytes(_mutate(mar.read_bytes(), edits, cut))
    json.dumps(check_artifact(folder).to_dict())


@FUZZ
@given(data=st.binary(max_size=512))
def test_fuzz_random_files(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    folder = tmp_path_factory.mktemp("fuzz_any")
    for name in ("saved_model.pb", "model.mar"):
        (folder / name).write_bytes(data)
        json.dumps(check_artifact(folder / name).to_dict())
        json.dumps(check_artifact(folder).to_dict())
        (folder / name).unlink()


def test_check_into_a_closed_pipe_ends_quietly(tf_models: Path, tmp_path: Path) -> None:
    """`gdc-sandbox check DIR | head -1`: the reader goes away early; no traceback, the usual exit code 141."""
    env = {**os.environ, "GDC_SANDBOX_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.cli", "check", str(tf_models / "keras_training")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the CLI has imported anything, let alone printed
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err
