"""Write artifacts the way the GDC prebuilt images expect them.

- TensorFlow: a SavedModel folder with the ``serve`` tag and a ``serving_default`` signature
  (``keras.Model.export`` under Keras 3, ``tf.saved_model.save(..., signatures=...)`` for tf.Module).
- PyTorch: a TorchScript module archived with ``torch-model-archiver --model-name model`` into
  ``model.mar`` (the only file name the prebuilt image loads).

Frameworks are imported lazily so that ``import sandbox.export`` stays cheap.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sandbox.errors import SandboxError

PathLike = str | os.PathLike[str]
"""Where to write: a :class:`~pathlib.Path` or a plain string."""


def export_tensorflow(model: Any, path: PathLike, signatures: Any = None) -> Path:
    """Export a Keras model or a ``tf.Module`` as a SavedModel folder at ``path``; returns ``path``.

    >>> export_tensorflow(keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]), Path("out/1"))  # doctest: +SKIP
    """
    import tensorflow as tf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "export") and hasattr(model, "layers"):
        model.export(str(path), verbose=False)
    else:
        if signatures is None:
            raise SandboxError(
                "a tf.Module needs an explicit serving signature",
                code="export.no-signature",
                hint="pass signatures={'serving_default': module.fn.get_concrete_function(...)}",
            )
        tf.saved_model.save(model, str(path), signatures=signatures)
    return path


def export_torch(
    module: Any,
    path: PathLike,
    *,
    example_inputs: Any = None,
    handler: str = "base_handler",
    model_name: str = "model",
    version: str = "1.0",
    extra_files: Sequence[PathLike] = (),
    requirements_file: PathLike | None = None,
) -> Path:
    """TorchScript ``module`` (traced when ``example_inputs`` is given) and archive it as ``path/model.mar``."""
    import torch

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    with tempfile.TemporaryDirectory(prefix="gdc-export-") as tmp:
        serialized = Path(tmp) / "model.pt"
        scripted = torch.jit.trace(module, example_inputs) if example_inputs is not None else torch.jit.script(module)
        scripted.save(str(serialized))
        return archive_mar(
            serialized,
            path,
            handler=handler,
            model_name=model_name,
            version=version,
            extra_files=extra_files,
            requirements_file=requirements_file,
        )


def archive_mar(
    serialized_file: PathLike,
    export_dir: PathLike,
    *,
    handler: str = "base_handler",
    model_name: str = "model",
    version: str = "1.0",
    model_file: PathLike | None = None,
    extra_files: Sequence[PathLike] = (),
    requirements_file: PathLike | None = None,
) -> Path:
    """Run the real ``torch-model-archiver`` (this Python's); returns the path of the written ``.mar``."""
    export_dir = Path(export_dir)
    argv = [
        sys.executable,
        "-m",
        "model_archiver.model_packaging",
        "--model-name",
        model_name,
        "--version",
        version,
        "--serialized-file",
        os.fspath(serialized_file),
        "--handler",
        handler,
        "--export-path",
        str(export_dir),
        "--force",
    ]
    if model_file is not None:
        argv += ["--model-file", os.fspath(model_file)]
    if extra_files:
        argv += ["--extra-files", ",".join(os.fspath(f) for f in extra_files)]
    if requirements_file is not None:
        argv += ["--requirements-file", os.fspath(requirements_file)]
    export_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SandboxError(
            f"torch-model-archiver failed (exit {result.returncode})",
            code="export.archiver-failed",
            details=(result.stderr or result.stdout)[-2000:],
            hint="check the handler and file paths passed to the archiver",
        )
    return export_dir / f"{model_name}.mar"
