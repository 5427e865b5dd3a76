"""A first request for an artifact nobody described: from the TF signature or the TorchServe handler kind.

TensorFlow: one instance shaped and typed like the ``serving_default`` inputs (or the only signature there
is, which is what the image will fail on). PyTorch: the input the built-in handler reads (a small PNG for
the vision handlers, a sentence for ``text_classifier``, a row of floats as wide as the first weight
matrix for ``base_handler``), or, for a custom handler, a message that says which input is needed.
"""

from __future__ import annotations

import base64
import json
import math
import pickletools
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.artifacts import tfproto

UNKNOWN_DIM = 1
"""Size given to dimensions the signature leaves open (other than the batch)."""
MAX_ELEMENTS = 100_000
VISION_HANDLERS = ("image_classifier", "object_detector", "image_segmenter")
_INTS = {"BININT", "BININT1", "BININT2", "LONG1", "INT"}
_MEMO = {"BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"}


@dataclass
class Probe:
    """The request to send, how it was made, or why none could be made (``instances`` is None)."""

    instances: list[Any] | None
    how: str


def synthesize(folder: Path) -> Probe:
    """A probe for the version folder ``folder``."""
    if (folder / "saved_model.pb").is_file():
        return _from_savedmodel(folder / "saved_model.pb")
    mars = sorted(folder.glob("*.mar"))
    if mars:
        return _from_mar(mars[0])
    return Probe(None, "no saved_model.pb or .mar at the top of the version folder: nothing to describe a request")


# -- TensorFlow ----------------------------------------------------------------------------------
def _from_savedmodel(pb: Path) -> Probe:
    try:
        saved = tfproto.parse_binary(tfproto.SavedModel, pb.read_bytes())
    except Exception:
        return Probe(None, "saved_model.pb does not parse, so it names no inputs; pass --instances")
    serve = [mg for mg in saved.meta_graphs if set(mg.meta_info_def.tags) == {"serve"}]  # type: ignore[attr-defined]
    if not serve:
        return Probe(None, "no MetaGraph is tagged {serve}: the image will not load it; pass --instances to try one")
    signatures = {k: v for k, v in serve[0].signature_def.items() if not k.startswith("__")}
    key = "serving_default" if "serving_default" in signatures else next(iter(sorted(signatures)), None)
    if key is None:
        return Probe(None, "the SavedModel has no signature: nothing to call; pass --instances to try one")
    inputs = signatures[key].inputs
    values = {name: _tf_value(info) for name, info in sorted(inputs.items())}
    if any(v is None for v in values.values()):
        return Probe(None, f"signature {key!r} has inputs too large to synthesize; pass --instances")
    instance = next(iter(values.values())) if len(values) == 1 else values
    shapes = ", ".join(f"{n} {_shape_text(i)} {_dtype_name(i.dtype)}" for n, i in sorted(inputs.items()))
    how = f"synthesized from signature {key!r} ({shapes}; open dimensions set to {UNKNOWN_DIM})"
    return Probe([instance], how)


def _dims(info: Any) -> list[int] | None:
    if not info.HasField("tensor_shape") or info.tensor_shape.unknown_rank:
        return None
    return [int(d.size) for d in info.tensor_shape.dim]


def _shape_text(info: Any) -> str:
    dims = _dims(info)
    return "(unknown rank)" if dims is None else "[" + ", ".join("None" if d < 0 else str(d) for d in dims) + "]"


def _dtype_name(dtype: int) -> str:
    return tfproto.DTYPES[dtype].removeprefix("DT_").lower() if dtype < len(tfproto.DTYPES) else str(dtype)


def _tf_value(info: Any) -> Any:
    dims = _dims(info)
    inner = [UNKNOWN_DIM if d < 0 else d for d in (dims[1:] if dims else [])]
    if math.prod(inner) > MAX_ELEMENTS:
        return None
    if info.dtype == tfproto.DT_STRING:
        leaf: Any = "probe"
    elif info.dtype == tfproto.DTYPES.index("DT_BOOL"):
        leaf = True
    elif info.dtype in tfproto.FLOAT_DTYPES:
        leaf = 0.5
    else:
        leaf = 1
    value = leaf
    for size in reversed(inner):
        value = [value] * size
    return json.loads(json.dumps(value))


# -- PyTorch -------------------------------------------------------------------------------------
def _from_mar(mar: Path) -> Probe:
    try:
        with zipfile.ZipFile(mar) as zf:
            model = json.loads(zf.read("MAR-INF/MANIFEST.json"))["model"]
            handler = str(model.get("handler") or "")
            serialized = str(model.get("serializedFile") or "")
            width = _first_weight_width(zf, serialized) if serialized else None
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError):
        return Probe(None, f"{mar.name} has no readable MAR-INF/MANIFEST.json, so no handler to describe the input")
    kind = handler.rsplit("/", 1)[-1].removesuffix(".py").split(":")[0]
    if kind in VISION_HANDLERS:
        return Probe([{"data": {"b64": base64.b64encode(_png()).decode()}}], f"a 16x16 PNG image for {kind}")
    if kind == "text_classifier":
        return Probe([{"data": "a short probe sentence"}], "one sentence for text_classifier")
    if kind == "base_handler" and width:
        how = f"one row of {width} floats for base_handler (the width of the first weight matrix in {serialized})"
        return Probe([[0.5] * width], how)
    if kind == "base_handler":
        return Probe(
            None,
            "base_handler passes instances to the model as one float tensor, and the archive does not "
            "record its shape: pass --instances '[[...]]' with one row per example",
        )
    return Probe(
        None,
        f"the custom handler {handler} decides what an instance is: pass --instances (or "
        "--instances-file) with what its preprocess() reads",
    )


def _first_weight_width(zf: zipfile.ZipFile, serialized: str) -> int | None:
    """In-features of the first 2-D tensor of a TorchScript/eager ``.pt`` inside the archive, if it is one."""
    import io

    try:
        info = zf.getinfo(serialized)
        if info.file_size > 256 * 1024 * 1024:
            return None
        with zipfile.ZipFile(io.BytesIO(zf.read(info))) as inner:
            pkl = next((n for n in inner.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            data = inner.read(pkl) if pkl else b""
        shape = _first_tensor_shape(data)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        return None
    return shape[1] if shape and len(shape) == 2 and 0 < shape[1] <= MAX_ELEMENTS else None


def _first_tensor_shape(data: bytes) -> tuple[int, ...] | None:
    """The size tuple that follows the first storage (persistent id) in a torch pickle."""
    try:
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data) if op.name not in _MEMO]
    except Exception:
        return None
    for i, (name, _) in enumerate(ops):
        if name != "BINPERSID" or i + 2 >= len(ops) or ops[i + 1][0] not in _INTS:
            continue
        j = i + 2 + (ops[i + 2][0] == "MARK")
        sizes = []
        while j < len(ops) and ops[j][0] in _INTS:
            sizes.append(int(ops[j][1] or 0))
            j += 1
        if j < len(ops) and ops[j][0].startswith("TUPLE"):
            return tuple(sizes)
        return None
    return None


def _png(size: int = 16) -> bytes:
    """A tiny RGB gradient PNG, written with zlib (no imaging library needed)."""
    rows = b"".join(
        b"\x00" + bytes((x * 16 % 256, y * 16 % 256, 128)[c] for x in range(size) for c in range(3))
        for y in range(size)
    )

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
