"""Diagnostics: what the preflight checker says about an artifact, with stable codes.

Each code in :data:`CODES` has a fixed severity, a one-line title and a hint template. Codes never
change meaning once released: users grep for them and CI gates on them. Every code is documented in
``docs/diagnostics.md`` and has a positive and a negative test in ``tests/checker``.

>>> d = make("tf.no-serve-tag", "no MetaGraph is tagged 'serve' (tags found: train)", path="saved_model.pb")
>>> d.severity, d.code
('error', 'tf.no-serve-tag')
"""

# No `from __future__ import annotations` here: typing.NamedTuple would compile() each string annotation,
# and a process's first compile() costs `gdc-sandbox check` a few milliseconds.
from typing import Any, Literal, NamedTuple

Severity = Literal["error", "warning", "info"]


class Diagnostic(NamedTuple):
    """One finding: a stable code, its severity, what was seen, how to fix it, and where."""

    code: str
    severity: Severity
    message: str
    hint: str
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    def render(self) -> str:
        """``error[code] message`` then ``at path`` and ``hint:`` lines."""
        lines = [f"{self.severity}[{self.code}] {self.message}"]
        if self.path:
            lines.append(f"  at {self.path}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class CodeInfo(NamedTuple):
    """Catalog entry: default severity, a title for docs, and a hint template (``str.format`` fields)."""

    severity: Severity
    title: str
    hint: str


CODES: dict[str, CodeInfo] = {
    # --- layout: what is in the version folder -------------------------------------------------------
    "layout.empty": CodeInfo(
        "error",
        "the artifact folder is empty",
        "upload the exported model before deploying: "
        "`gdc-sandbox upload EXPORT_DIR s3://BUCKET/MODEL_ID/MODEL_VERSION_ID`",
    ),
    "layout.no-model-file": CodeInfo(
        "error",
        "no saved_model.pb or model.mar at the top of the folder",
        "put saved_model.pb (+ variables/, assets/) or model.mar directly in the version folder{extra}",
    ),
    "layout.not-an-artifact": CodeInfo(
        "error",
        "the folder is not a model artifact: no model at its top, nor among the first files and folders below it",
        "pass the version folder: the one holding saved_model.pb (with variables/ and assets/) or model.mar "
        "directly, what GDC reads at s3://BUCKET/MODEL_ID/MODEL_VERSION_ID/ (below a folder without a model at its "
        "top, the checker looks at {limit} files and folders, not the whole tree)",
    ),
    "layout.nested": CodeInfo(
        "error",
        "the model sits one or more folders too deep (or inside an archive)",
        "upload the contents of {inner} as the version folder itself, not its parent",
    ),
    "layout.lfs-pointer": CodeInfo(
        "error",
        "a Git LFS pointer stub instead of the real bytes",
        "run `git lfs pull` (or download the real file) before uploading",
    ),
    "layout.duplicate-model": CodeInfo(
        "warning",
        "a model at the top and another copy in a sub-folder",
        "the image loads only the top-level model; to avoid confusion, remove {inner} from the export and upload "
        "it as a new version",
    ),
    "layout.mixed-frameworks": CodeInfo(
        "warning",
        "both a SavedModel and a model.mar in one folder",
        "keep one framework per version folder; the image picks only one",
    ),
    "layout.file-not-dir": CodeInfo(
        "warning",
        "the path names a file; the artifact URI must be its folder",
        "deploy s3://BUCKET/MODEL_ID/MODEL_VERSION_ID/ (the folder holding {name})",
    ),
    "layout.image-mismatch": CodeInfo(
        "error", "the image serves another framework than the artifact", "pick a {framework} image, e.g. {suggest}"
    ),
    "layout.too-large": CodeInfo(
        "warning",
        "the artifact is larger than the 10 GB limit",
        "shrink the model (quantize, drop optimizer state) or split it; GDC caps artifacts at 10 GB",
    ),
    # --- tensorflow: the folder holds something else than a SavedModel -------------------------------------
    "tf.keras-file": CodeInfo(
        "error",
        "a Keras .keras/.h5 file instead of a SavedModel",
        "export with `model.export(path)` (Keras 3) or `tf.saved_model.save(model, path)`",
    ),
    "tf.checkpoint-only": CodeInfo(
        "error",
        "training checkpoints instead of an exported SavedModel",
        "restore the checkpoint into the model and export it with `model.export(path)` or "
        "`tf.saved_model.save(module, path, signatures=...)`",
    ),
    "tf.pbtxt": CodeInfo(
        "warning",
        "the SavedModel is in text format (saved_model.pbtxt)",
        "GDC expects the binary saved_model.pb; re-export with `tf.saved_model.save`",
    ),
    "tf.unparseable": CodeInfo(
        "error",
        "saved_model.pb is not a SavedModel proto",
        "a frozen GraphDef or another file was renamed; re-export with `tf.saved_model.save` or `model.export(path)`",
    ),
    # --- tensorflow: the SavedModel itself ----------------------------------------------------------------
    "tf.no-serve-tag": CodeInfo(
        "error",
        "no MetaGraph tagged 'serve'",
        "export with tags=['serve'] (`tf.saved_model.save` and `model.export` do this)",
    ),
    "tf.no-serving-default": CodeInfo(
        "error",
        "no 'serving_default' signature",
        "export with signatures={{'serving_default': fn}}; the GDC image always uses serving_default",
    ),
    "tf.variables-missing": CodeInfo(
        "error",
        "the graph reads variables that variables/ does not hold",
        "upload the whole export: variables/variables.index and every variables.data-* shard",
    ),
    "tf.variables-unsaved": CodeInfo(
        "error",
        "a signature reads variables the exporter did not track, so they are not in the SavedModel",
        "make the model a tracked attribute of the exported object (assign Keras 3 models' variables to a "
        "tracked attribute, or export with model.export()), then check that variables/ holds them",
    ),
    "tf.asset-missing": CodeInfo(
        "error",
        "an asset the graph reads is not under assets/",
        "track the file as an asset (tf.saved_model.Asset / a tracked lookup-table initializer) "
        "so the exporter copies it into assets/, and upload assets/",
    ),
    "tf.op-unsupported": CodeInfo("error", "an op the image's TensorFlow does not register", "{why}"),
    "tf.attr-unsupported": CodeInfo(
        "error",
        "a node attr the image's TensorFlow does not know: an error where that TF refuses it (before 2.14); "
        "TF 2.14 and later drop it and serve",
        "export with the image's TensorFlow version (or pick a newer image)",
    ),
    "tf.newer-than-image": CodeInfo(
        "warning",
        "written by a newer TensorFlow than the image runs",
        "train/export with TensorFlow {image_version} or pick a newer image",
    ),
    "tf.registry-approximate": CodeInfo(
        "info",
        "no op registry for this TensorFlow; a nearby one was used",
        "to be sure, export with TensorFlow {image_version} itself (it writes only ops it has), or target an "
        "image with its own registry: `gdc-sandbox check --image {suggest} PATH`",
    ),
    "tf.warmup-invalid": CodeInfo(
        "error",
        "assets.extra/tf_serving_warmup_requests is not a TFRecord of PredictionLog",
        "write it with tf.io.TFRecordWriter and PredictionLog(predict_log=...) records, or delete it",
    ),
    "tf.input-no-batch-dim": CodeInfo(
        "warning",
        "a signature input has no batch dimension",
        "export the input with a leading None dimension; JSON `instances` is always a batch",
    ),
    "tf.output-no-batch-dim": CodeInfo(
        "warning",
        "a signature output has no batch dimension",
        "return per-example outputs with a leading batch dimension (REST row format needs it)",
    ),
    "tf.generated-names": CodeInfo(
        "info",
        "serving_default's tensors have generated names (args_0, inputs_1, output_0), not the model's",
        "name them at export: tf.TensorSpec(..., name=...) for inputs and a dict of named outputs (Keras 3: "
        "model.export() keeps input names); or use the generated names in clients",
    ),
    "tf.string-input-b64": CodeInfo(
        "info",
        'a DT_STRING input: binary values must be sent as {{"b64": ...}}',
        'send text as plain JSON strings ("hello"); send binary bytes (images, serialized protos) as '
        '{{"b64": "<standard base64>"}}, which the server decodes before the graph',
    ),
    "tf.double-base64": CodeInfo(
        "warning",
        "the graph base64-decodes a string input the server already decodes",
        'drop tf.io.decode_base64 from the serving function and send {{"b64": ...}}',
    ),
    "tf.parsing-signature": CodeInfo(
        "warning",
        "serving_default reads serialized tf.Example protos, not the features themselves",
        'send each instance as {{"b64": <serialized tf.train.Example>}}, or export a serving function that '
        "takes the features as named tensors",
    ),
    "tf.training-mode": CodeInfo(
        "warning",
        "serving_default behaves as in training: random ops, batch statistics or variable updates per request",
        "call the model with training=False in the serving function (TF1: K.set_learning_phase(0)) and export "
        "again; ignore this only if the serving function is meant to sample or to keep state",
    ),
    "tf.payload-large": CodeInfo(
        "warning",
        "one instance of a dense input is larger than the 1.5 MB request limit",
        "export a tf.string (encoded bytes) input instead of a dense float tensor",
    ),
    # --- pytorch -------------------------------------------------------------------------------------------
    "torch.raw-weights": CodeInfo(
        "error",
        "a raw PyTorch .pt/.pth file without a model.mar",
        "package it: `torch-model-archiver --model-name model --serialized-file ... --handler ...`",
    ),
    "mar.wrong-filename": CodeInfo(
        "error",
        "the archive is not named model.mar",
        "archive again with `torch-model-archiver --model-name model ...`: that names the file model.mar and the "
        "model 'model', and the image needs both; renaming the file is enough only if its MANIFEST modelName is "
        "already 'model'",
    ),
    "mar.not-zip": CodeInfo(
        "error",
        "the .mar is not a readable zip archive",
        "re-create it with torch-model-archiver and upload it again (check for a truncated copy)",
    ),
    "mar.no-manifest": CodeInfo(
        "error",
        "MAR-INF/MANIFEST.json is missing or unreadable",
        "build the archive with torch-model-archiver, not by zipping files by hand",
    ),
    "mar.model-name": CodeInfo(
        "error",
        "MANIFEST modelName is not 'model'",
        "archive with `--model-name model`; the GDC image registers the model as 'model'",
    ),
    "mar.handler-missing": CodeInfo(
        "error",
        "the handler is neither a built-in handler nor a .py in the archive",
        "pass the handler as a path to a .py file (`--handler my_handler.py`) or use one of: {builtins}",
    ),
    "mar.handler-invalid": CodeInfo(
        "error",
        "the handler module will not import on the image's Python (3.9 syntax, annotations, modules) or has "
        "no single entry point",
        "the handler must parse, import only what the image ships or the archive holds, and "
        "define exactly one class (or be given as `file.py:function`)",
    ),
    "mar.serialized-missing": CodeInfo(
        "error",
        "the serialized model file is missing",
        "archive with `--serialized-file` pointing at the weights/TorchScript file",
    ),
    "mar.model-file-mismatch": CodeInfo(
        "error",
        "serialized file and --model-file disagree",
        "TorchScript: no --model-file and a .pt name; state_dict/eager: add --model-file with the nn.Module class",
    ),
    "mar.model-file-invalid": CodeInfo(
        "error",
        "the model file does not define exactly one nn.Module class",
        "keep exactly one class in --model-file; move helpers into --extra-files",
    ),
    "mar.pickle-main": CodeInfo(
        "error",
        "the pickle references classes from __main__",
        "define the classes in an importable module shipped with the archive, or save a "
        "state_dict / TorchScript instead",
    ),
    "mar.torch-version": CodeInfo(
        "warning",
        "the serialized file needs a newer torch than the image's (format version, operators); newer records "
        "alone are only noted",
        "save with torch {image_version} (or an older version) or use TorchScript/state_dict",
    ),
    "mar.training-mode": CodeInfo(
        "warning",
        "the TorchScript file was traced in training mode (dropout or batch norm with training=True)",
        "call model.eval() before torch.jit.trace and archive again (sandbox.export.export_torch does)",
    ),
    "mar.unsafe-path": CodeInfo(
        "error",
        "the archive has absolute, '..' or symlink entries",
        "re-create the archive with torch-model-archiver from plain relative files",
    ),
    "mar.requirements": CodeInfo(
        "warning",
        "a requirements file the image will not install",
        "install_py_dep_per_model is false in the image: vendor pure-Python deps via --extra-files "
        "or use only what the image ships",
    ),
    "mar.weights-only": CodeInfo(
        "warning",
        "a full-model pickle that the image's torch.load default handles differently from torch>=2.6",
        "save a state_dict (or TorchScript) and load it with a --model-file",
    ),
    "mar.cuda-tensors": CodeInfo(
        "warning", "tensors saved on a CUDA device", "save from CPU (`model.cpu()`) or load with map_location='cpu'"
    ),
    "mar.extra-files-nested": CodeInfo(
        "error",
        "the handler relies on package structure that flat extraction loses",
        "the archive is extracted flat: use plain `import module` of top-level .py files "
        "and open data files by base name",
    ),
    "mar.too-large": CodeInfo(
        "warning",
        "the archive is larger than the checker reads",
        "problems inside this entry are not reported: deploy it to see whether the image loads it (the pod log "
        "has the model server's own words)",
    ),
}


class _Blank(dict[str, Any]):
    """Template fields: a missing one renders as an empty string."""

    def __missing__(self, key: str) -> str:
        return ""


def make(
    code: str,
    message: str,
    *,
    path: str | None = None,
    severity: Severity | None = None,
    hint: str | None = None,
    **fields: Any,
) -> Diagnostic:
    """Build a :class:`Diagnostic` for ``code`` from the catalog; ``fields`` fill the hint template."""
    info = CODES[code]
    if hint is None:
        hint = info.hint.format_map(_Blank(fields))
    return Diagnostic(code, severity or info.severity, message, hint, path)
