"""Tell what a PyTorch serialized file is, and what its pickle needs, without unpickling it.

``torch.jit.save`` zips hold ``constants.pkl`` and ``code/``; ``torch.save`` zips hold ``data.pkl`` only;
legacy (pre-1.6 or ``_use_new_zipfile_serialization=False``) files are a bare pickle stream.
The pickle is read with :mod:`pickletools` (opcode by opcode): nothing is imported or executed.
"""

from __future__ import annotations

import ast
import io
import pickletools
import re
import zipfile
from dataclasses import dataclass, field
from typing import Literal

from sandbox.images import version_tuple

Kind = Literal["torchscript", "eager-zip", "legacy-pickle", "onnx", "unknown"]
MAX_PICKLE_BYTES = 64 * 1024 * 1024
MAX_SCRIPT_VERSION = 10
"""``kMaxSupportedFileFormatVersion`` of the torch 2.1-2.4 readers."""

#: Records torch added to its zip format, and the first torch release that writes them (approximate).
FORMAT_MARKERS = {
    "byteorder": "2.1",
    ".data/serialization_id": "2.2",
    ".format_version": "2.5",
    ".storage_alignment": "2.6",
}
_CUDA = re.compile(r"^cuda(:\d+)?$")
MAX_CODE_BYTES = 4 * 1024 * 1024
#: aten ops with a ``training`` flag, and its position: a trace bakes the flag in as a constant.
_DROPOUTS = ("dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout")
TRAINING_ARG = {
    **{name + suffix: 2 for name in _DROPOUTS for suffix in ("", "_")},
    "batch_norm": 5,
    "rrelu": 3,
    "rrelu_": 3,
}
_SAFE_MODULES = ("torch._utils", "torch._tensor", "torch.serialization", "torch.nn.parameter")


@dataclass
class TorchFile:
    kind: Kind
    globals: list[tuple[str, str]] = field(default_factory=list)
    cuda: bool = False
    version: int | None = None
    min_torch: tuple[str, str] | None = None
    """(first torch version, marker record) of the newest format marker found."""
    training_calls: list[str] = field(default_factory=list)
    """TorchScript calls run in training mode, e.g. ``torch.dropout(.., True)``: the mark of a trace in train()."""
    ops: set[str] = field(default_factory=set)
    """Names ``X`` of the ``torch.X(...)`` / ``ops.aten.X(...)`` calls in TorchScript code (aten operators)."""
    note: str = ""

    @property
    def main_globals(self) -> list[str]:
        return sorted({f"{m}.{n}" for m, n in self.globals if m == "__main__"})

    @property
    def custom_globals(self) -> list[str]:
        """Globals the torch>=2.6 ``weights_only`` unpickler rejects by default."""
        return sorted({f"{m}.{n}" for m, n in self.globals if not _weights_only_safe(m, n)})

    @property
    def is_state_dict(self) -> bool:
        return not self.custom_globals


def _weights_only_safe(module: str, name: str) -> bool:
    if module in _SAFE_MODULES or (
        module == "torch" and (name.endswith("Storage") or name[:1].islower() or name in {"Size", "Tensor"})
    ):
        return True
    return (module, name) in {
        ("collections", "OrderedDict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("builtins", "bytearray"),
        ("_codecs", "encode"),
        ("torch", "device"),
    }


def scan_pickle(data: bytes) -> tuple[list[tuple[str, str]], bool]:
    """``(globals, has_cuda_location)`` of a pickle stream; stops quietly at the first bad opcode."""
    found: list[tuple[str, str]] = []
    strings: list[str] = []
    cuda = False
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(data[:MAX_PICKLE_BYTES])):
            if op.name == "GLOBAL" and isinstance(arg, str):
                module, _, name = arg.partition(" ")
                found.append((module, name))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append((strings[-2], strings[-1]))
            elif isinstance(arg, str):
                strings.append(arg)
                cuda = cuda or bool(_CUDA.match(arg))
            if op.name == "STOP":
                break
    except Exception:
        pass  # a truncated or mutated pickle: report what was read
    return found, cuda


def inspect_bytes(data: bytes) -> TorchFile:
    """Classify a serialized model file from its bytes."""
    if data[:4] == b"PK\x03\x04":
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
            names = zf.namelist()
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            return TorchFile("unknown", note=f"a damaged zip ({exc})")
        return _inspect_zip(zf, names)
    if data[:1] == b"\x80":
        globs, cuda = scan_pickle(data)
        return TorchFile("legacy-pickle", globs, cuda)
    if b"onnx" in data[:64].lower() or data[:2] == b"\x08\x07":
        return TorchFile("onnx")
    return TorchFile("unknown", note="neither a zip nor a pickle")


def _inspect_zip(zf: zipfile.ZipFile, names: list[str]) -> TorchFile:
    def record(suffix: str) -> str | None:
        for n in names:
            if n.endswith("/" + suffix) and n.count("/") == suffix.count("/") + 1:
                return n
        return None

    script = record("constants.pkl") is not None or any("/code/" in n for n in names)
    data_pkl = record("data.pkl")
    if not script and data_pkl is None:
        return TorchFile("unknown", note="a zip without data.pkl: not a torch.save/torch.jit.save file")
    tf = TorchFile("torchscript" if script else "eager-zip")
    for pkl in filter(None, (data_pkl, record("constants.pkl"))):
        info = zf.getinfo(pkl)
        if info.file_size <= MAX_PICKLE_BYTES:
            try:
                globs, cuda = scan_pickle(zf.read(pkl))
            except Exception:
                globs, cuda = [], False
            tf.globals += globs
            tf.cuda = tf.cuda or cuda
    version = record("version")
    if version:
        try:
            tf.version = int(zf.read(version)[:16].strip() or b"0")
        except Exception:
            tf.version = None
    if script:
        tf.training_calls, tf.ops = scan_code(zf, [n for n in names if "/code/" in n and n.endswith(".py")])
    for marker, first in FORMAT_MARKERS.items():
        if record(marker) and (tf.min_torch is None or version_tuple(first) > version_tuple(tf.min_torch[0])):
            tf.min_torch = (first, marker)
    return tf


def scan_code(zf: zipfile.ZipFile, code_files: list[str]) -> tuple[list[str], set[str]]:
    """In TorchScript code: the distinct ``torch.<op>`` calls whose training argument is the constant True, and
    the names of every ``torch.<op>`` / ``ops.aten.<op>`` called."""
    training: list[str] = []
    ops: set[str] = set()
    budget = MAX_CODE_BYTES
    for name in code_files:
        size = zf.getinfo(name).file_size
        if size > budget:
            break
        budget -= size
        try:
            tree = ast.parse(zf.read(name).decode("utf-8", "replace"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            func = node.func
            if _is_aten(func.value):
                ops.add(func.attr)
            position = TRAINING_ARG.get(func.attr)
            if position is None or not (isinstance(func.value, ast.Name) and func.value.id == "torch"):
                continue
            flag = node.args[position] if len(node.args) > position else None
            if isinstance(flag, ast.Constant) and flag.value is True and f"torch.{func.attr}" not in training:
                training.append(f"torch.{func.attr}")
    return training, ops


def _is_aten(value: ast.expr) -> bool:
    """``torch`` in ``torch.add(...)``, or ``ops.aten`` in ``ops.aten.add(...)``."""
    if isinstance(value, ast.Name):
        return value.id == "torch"
    return isinstance(value, ast.Attribute) and value.attr == "aten" and isinstance(value.value, ast.Name) and (
        value.value.id == "ops"
    )
