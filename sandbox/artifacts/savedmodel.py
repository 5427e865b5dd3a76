"""Check a SavedModel folder the way the TF prebuilt image will load it (tags, signature, ops, files)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from sandbox.artifacts import tf_ops, tfproto
from sandbox.artifacts.tf_behaviour import check_serving_behaviour
from sandbox.artifacts.tf_files import check_assets, check_unsaved_variables, check_variables
from sandbox.artifacts.tf_graph import GraphWalker
from sandbox.diagnostics import Diagnostic, make
from sandbox.images import Image, newest, version_tuple

MAX_PB_BYTES = 2**31 - 1
"""Protobuf's hard limit: TensorFlow cannot read a larger saved_model.pb either."""
PAYLOAD_LIMIT = 1_572_864
CHARS_PER_NUMBER = {"float": 6, "int": 3}
RENAMED_INPUT = re.compile(r"^(args_\d+|inputs(_\d+)?)$")
"""Input names tf.saved_model.save gives a function's arguments, whatever the model called them."""
UNNAMED_INPUT = re.compile(r"^(keras_tensor(_\d+)?|input_layer(_\d+)?|input_\d+)$")
"""Keras names for inputs the user never named."""
UNNAMED_OUTPUT = re.compile(r"^output_\d+$")


def check_savedmodel(root: Path, image: Image) -> list[Diagnostic]:
    """All TensorFlow diagnostics for the SavedModel in ``root`` (which holds saved_model.pb or .pbtxt)."""
    out: list[Diagnostic] = []
    saved_model = _parse(root, out)
    if saved_model is None:
        return out
    tag_sets = [sorted(mg.meta_info_def.tags) for mg in saved_model.meta_graphs]
    serve = [mg for mg in saved_model.meta_graphs if set(mg.meta_info_def.tags) == {"serve"}]
    if not serve:
        near = [t for t in tag_sets if "serve" in t]
        why = " (TF Serving needs the tag set to be exactly {serve})" if near else ""
        found = "; ".join("{" + ", ".join(t) + "}" for t in tag_sets) or "none"
        out.append(
            make(
                "tf.no-serve-tag",
                f"no MetaGraph is tagged {{serve}}{why}; tag sets found: {found}",
                path="saved_model.pb",
            )
        )
        return out
    mg = serve[0]
    out += _check_version(mg, image)
    out += _check_signatures(mg)
    walker = GraphWalker(mg)
    roots = _serving_roots(mg, walker)
    out += _check_ops(walker, roots, image)
    out += check_serving_behaviour(mg, walker)
    out += check_variables(root, mg, walker)
    out += check_unsaved_variables(mg, walker)
    out += check_assets(root, mg, walker, roots)
    warm = root / "assets.extra" / "tf_serving_warmup_requests"
    warm_why = _warmup_problem(warm) if warm.is_file() else None
    if warm_why:
        out.append(
            make(
                "tf.warmup-invalid",
                f"the warmup file will be rejected: {warm_why}",
                path="assets.extra/tf_serving_warmup_requests",
            )
        )
    return out


def _warmup_problem(path: Path) -> str | None:
    from sandbox.artifacts import warmup  # few models ship warmup records: only they load the reader

    return warmup.problem(path)


def _parse(root: Path, out: list[Diagnostic]) -> Any | None:
    pb, pbtxt = root / "saved_model.pb", root / "saved_model.pbtxt"
    if not pb.is_file():
        out.append(make("tf.pbtxt", "only a text-format saved_model.pbtxt is present", path="saved_model.pbtxt"))
        try:
            return tfproto.parse_text(tfproto.SavedModel, pbtxt.read_text(errors="strict"))
        except Exception as exc:
            out.append(
                make(
                    "tf.unparseable",
                    f"saved_model.pbtxt is not a text SavedModel: {str(exc)[:200]}",
                    path="saved_model.pbtxt",
                )
            )
            return None
    if pb.stat().st_size > MAX_PB_BYTES:
        out.append(
            make("tf.unparseable", "saved_model.pb is larger than 2 GB, the protobuf limit", path="saved_model.pb")
        )
        return None
    data = pb.read_bytes()
    try:
        sm = tfproto.parse_binary(tfproto.SavedModel, data)
    except Exception as exc:
        sm, reason = None, f"it does not decode as a binary proto ({str(exc)[:120]})"
    else:
        if sm.meta_graphs:  # type: ignore[attr-defined]
            return sm
        reason = "it holds no MetaGraph"
    out.append(
        make(
            "tf.unparseable", f"saved_model.pb is not a SavedModel: {reason}{_what_is_it(data)}", path="saved_model.pb"
        )
    )
    return None


def _what_is_it(data: bytes) -> str:
    head = data[:200].lstrip()
    if head[:1] in (b"{", b"["):
        return "; it looks like JSON"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head[:100]):
        return f"; it looks like a text file starting {head[:40].decode(errors='replace')!r}"
    try:
        graph = tfproto.parse_binary(tfproto.GraphDef, data)
    except Exception:
        return ""
    if graph.node and all(n.op for n in graph.node[:20]):  # type: ignore[attr-defined]
        return (
            f"; it is a frozen GraphDef ({len(graph.node)} nodes), not a SavedModel: "  # type: ignore[attr-defined]
            "TF Serving reports 'Could not find meta graph def matching supplied tags: { serve }'"
        )
    return ""


def _check_version(mg: Any, image: Image) -> list[Diagnostic]:
    written = mg.meta_info_def.tensorflow_version
    if written and version_tuple(written)[:2] > image.version_tuple[:2]:
        return [
            make(
                "tf.newer-than-image",
                f"saved by TensorFlow {written}; image {image.name} runs TensorFlow {image.version}, which may "
                "not register every op and attr this graph uses",
                path="saved_model.pb",
                image_version=image.version,
            )
        ]
    return []


def _check_signatures(mg: Any) -> list[Diagnostic]:
    keys = sorted(k for k in mg.signature_def if not k.startswith("__"))
    if "serving_default" not in mg.signature_def:
        found = ", ".join(keys) or "none"
        return [
            make(
                "tf.no-serving-default",
                f"signature 'serving_default' not found; signatures: {found}",
                path="saved_model.pb",
            )
        ]
    sig = mg.signature_def["serving_default"]
    out = _check_generated_names(sig)
    for key, info in sorted(sig.inputs.items()):
        shape = _shape(info)
        if info.dtype == tfproto.DT_STRING:
            out.append(
                make(
                    "tf.string-input-b64",
                    f'input \'{key}\' is DT_STRING: send binary data as {{"b64": "<standard base64>"}}',
                    path="serving_default",
                )
            )
        if shape is not None and (not shape or shape[0] != -1):
            out.append(
                make(
                    "tf.input-no-batch-dim",
                    f"input '{key}' has shape {shape}: no leading batch (None) "
                    "dimension, so `instances` lists of more than one example fail",
                    path="serving_default",
                )
            )
        elif shape and all(d >= 0 for d in shape[1:]) and info.dtype != tfproto.DT_STRING:
            kind = "float" if info.dtype in tfproto.FLOAT_DTYPES else "int"
            approx = math.prod(shape[1:]) * CHARS_PER_NUMBER[kind]
            if approx > PAYLOAD_LIMIT:
                out.append(
                    make(
                        "tf.payload-large",
                        f"input '{key}' has shape {shape}: one instance as JSON is at "
                        f"least {approx / 1e6:.1f} MB, over the 1.5 MB request limit",
                        path="serving_default",
                    )
                )
    for key, info in sorted(sig.outputs.items()):
        shape = _shape(info)
        if shape is not None and (not shape or shape[0] not in (-1,)):
            out.append(
                make(
                    "tf.output-no-batch-dim",
                    f"output '{key}' has shape {shape}: no leading batch "
                    "dimension, REST row format (`instances`) cannot split it per example",
                    path="serving_default",
                )
            )
    return out


def _check_generated_names(sig: Any) -> list[Diagnostic]:
    """Generated names where a client has to use them: renamed inputs, or several unnamed inputs or outputs."""
    several = len(sig.inputs) > 1
    inputs = sorted(k for k in sig.inputs if RENAMED_INPUT.match(k) or (several and UNNAMED_INPUT.match(k)))
    outputs = sorted(k for k in sig.outputs if UNNAMED_OUTPUT.match(k)) if len(sig.outputs) > 1 else []
    parts = []
    if inputs:
        parts.append(
            f"input(s) {', '.join(inputs)}: named instances must use these keys, or fail with "
            "'JSON object: does not have named input: <your name>'"
        )
    if outputs:
        parts.append(f"outputs {', '.join(outputs)}: each prediction is an object keyed by these names")
    if not parts:
        return []
    return [
        make(
            "tf.generated-names",
            "serving_default has generated tensor names, not your model's: " + "; ".join(parts),
            path="serving_default",
        )
    ]


def _shape(info: Any) -> list[int] | None:
    if not info.HasField("tensor_shape") or info.tensor_shape.unknown_rank:
        return None
    return [int(d.size) for d in info.tensor_shape.dim]


def _serving_roots(mg: Any, walker: GraphWalker) -> list[Any]:
    """Graph nodes the server runs: everything but the checkpoint-save path."""
    save = mg.saver_def.save_tensor_name.split(":")[0] if mg.HasField("saver_def") else ""
    return [n for n in walker.graph.node if n.name != save]


def _check_ops(walker: GraphWalker, roots: list[Any], image: Image) -> list[Diagnostic]:
    reg = tf_ops.registry_for(image.version)
    out: list[Diagnostic] = []
    if reg is None:
        return out
    approx = ""
    if reg.approximate:
        approx = f" (no registry ships for TF {image.version}; checked against TF {reg.version}, the nearest)"
        out.append(
            make(
                "tf.registry-approximate",
                f"TF {image.version} has no shipped op registry; ops were "
                f"checked against TF {reg.version}, so ops added in between are not caught",
                path=None,
                image_version=image.version,
                suggest=newest("tf").name,
            )
        )
    defaults = {
        (op.name, a.name): a.default_value.SerializeToString(deterministic=True)
        for op in walker.stripped_ops
        for a in op.attr
        if a.HasField("default_value")
    }
    seen_ops: set[str] = set()
    seen_attrs: set[tuple[str, str]] = set()
    for use in walker.uses(roots):
        where = "graph" if use.where == "graph" else f"function {use.where}"
        if use.op in tf_ops.PYTHON_ONLY_OPS and use.op not in seen_ops:
            seen_ops.add(use.op)
            out.append(
                make(
                    "tf.op-unsupported",
                    f"op '{use.op}' (node {use.node} in {where}) runs Python code "
                    "(tf.py_function / tf.numpy_function); the image's C++ model server cannot run it",
                    path="saved_model.pb",
                    why="rewrite the Python function with TensorFlow ops before export",
                )
            )
        elif use.op not in reg.ops and use.op not in seen_ops:
            seen_ops.add(use.op)
            added, lib = tf_ops.first_version_with(use.op), tf_ops.where_from(use.op)
            if added:
                why = f"'{use.op}' was added in TF {added}, newer than the image's TF {image.version}{approx}"
                hint = f"export with TF {image.version} or deploy on an image with TF >= {added}"
            else:
                why = f"'{use.op}' is not a core TensorFlow op{' (from ' + lib + ')' if lib else ''}{approx}"
                hint = "the GDC image runs stock TensorFlow only: replace the custom/library op or precompute it"
            out.append(
                make(
                    "tf.op-unsupported",
                    f"op type not registered in TF {image.version}: {why}; node {use.node} in {where}",
                    path="saved_model.pb",
                    why=hint,
                )
            )
        elif use.op in reg.ops:
            known = reg.attrs(use.op)
            for attr, value in use.attrs.items():
                if attr in known or (use.op, attr) in seen_attrs or defaults.get((use.op, attr)) == value:
                    continue  # known, already reported, or at its default (the loader strips those)
                seen_attrs.add((use.op, attr))
                out.append(_unknown_attr(use.node, where, use.op, attr, image, f"{reg.version}{approx}"))
    return out


ATTRS_IGNORED_FROM = (2, 14)
"""From this TF on (at the latest), a NodeDef attr the op does not define is logged and dropped ("NodeDef mentions
attribute X which is not in the op definition ... Unknown attributes will be ignored"), not an error."""
METADATA_ATTRS = frozenset({"debug_name"})
"""Attrs that only label a node (Keras 3 / TF 2.18 set VarHandleOp.debug_name): dropping them changes nothing."""


def _unknown_attr(node: str, where: str, op: str, attr: str, image: Image, registry: str) -> Diagnostic:
    """An attr the image's TF does not define: an error where TF refuses it, else what TF does with it."""
    said = f"node {node} ({where}) sets attr '{attr}' that op '{op}' does not have in TF {registry}"
    if image.version_tuple < ATTRS_IGNORED_FROM:
        return make("tf.attr-unsupported", said, path="saved_model.pb")
    if attr in METADATA_ATTRS:
        return make(
            "tf.attr-unsupported",
            f"{said}; TF {image.version} drops it ('Unknown attributes will be ignored') and it only names the node",
            path="saved_model.pb",
            severity="info",
            hint="nothing to do: the model serves the same numbers",
        )
    return make(
        "tf.attr-unsupported",
        f"{said}; TF {image.version} drops it ('Unknown attributes will be ignored') and runs the op as it defines it: "
        "compare its predictions with the training framework's",
        path="saved_model.pb",
        severity="warning",
        hint=f"deploy with --force and compare predictions, or export with TensorFlow {image.version}",
    )
