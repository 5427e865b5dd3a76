"""Generate ``sandbox/data/tf_ops/<major.minor>.txt``: the ops (and their attr names) one TensorFlow registers.

Usage::

    .venv/bin/python scripts/gen_tf_op_registry.py            # the venv's own TensorFlow
    .venv/bin/python scripts/gen_tf_op_registry.py 2.14.1     # a throwaway venv with tensorflow-cpu==2.14.1

Each line is ``OpName<TAB>attr1,attr2,...`` sorted by op name. The preflight checker reads these files to
tell whether an op (or a NodeDef attr) in a SavedModel is registered in the image's TensorFlow.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import venv
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "sandbox" / "data" / "tf_ops"

DUMP = r"""
import sys
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api
import tensorflow as tf
buf = c_api.TF_GetAllOpList()
ops = op_def_pb2.OpList()
ops.ParseFromString(c_api.TF_GetBuffer(buf))
lines = sorted(f"{op.name}\t{','.join(sorted(a.name for a in op.attr))}" for op in ops.op)
version = ".".join(tf.__version__.split(".")[:2])
sys.stdout.write(version + "\n" + "\n".join(lines) + "\n")
"""


def dump(python: str) -> Path:
    """Run the dump in ``python`` and write the registry file; return its path."""
    out = subprocess.run([python, "-c", DUMP], check=True, capture_output=True, text=True).stdout
    version, _, body = out.partition("\n")
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / f"{version}.txt"
    target.write_text(body)
    print(f"wrote {target} ({body.count(chr(10))} ops)")
    return target


def dump_version(spec: str) -> Path:
    """Create a throwaway venv with ``tensorflow-cpu==spec`` (and ``numpy<2``) and dump its registry."""
    with tempfile.TemporaryDirectory(prefix="tfops-") as tmp:
        venv.create(tmp, with_pip=True)
        python = str(Path(tmp) / "bin" / "python")
        pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, f"tensorflow-cpu=={spec}", "numpy<2"], check=True)
        return dump(python)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        dump(sys.executable)
    for spec in args:
        dump_version(spec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
