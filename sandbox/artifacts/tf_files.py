"""The files a SavedModel's graph needs besides saved_model.pb: the variables checkpoint and the assets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.artifacts import tfproto
from sandbox.artifacts.tf_bundle import MAX_INDEX_BYTES, BundleError, read_index
from sandbox.artifacts.tf_graph import GraphWalker, node_name
from sandbox.diagnostics import Diagnostic, make

_VARIABLE_OPS = {"VarHandleOp", "VariableV2", "Variable"}


def check_variables(root: Path, mg: Any, walker: GraphWalker) -> list[Diagnostic]:
    tracked = sum(1 for n in mg.object_graph_def.nodes if n.WhichOneof("kind") == "variable")
    tf1 = not mg.object_graph_def.nodes  # TF2 exports track variables in the object graph
    tf1_vars = [n.name for n in walker.graph.node if n.op in _VARIABLE_OPS] if tf1 else []
    if not tracked and not tf1_vars:
        return []
    need = tracked or len(tf1_vars)
    index = root / "variables" / "variables.index"
    if not index.is_file():
        where = "variables/ is missing" if not (root / "variables").is_dir() else "variables/variables.index is missing"
        return [
            make(
                "tf.variables-missing",
                f"the graph has {need} variable(s) but {where}: the server logs 'no "
                "checkpoints were restored' and serves uninitialised weights",
                path="variables/",
            )
        ]
    try:
        bundle = read_index(index.read_bytes()[:MAX_INDEX_BYTES])
    except (BundleError, OSError) as exc:
        return [
            make(
                "tf.variables-missing",
                f"variables/variables.index is unreadable: {exc}",
                path="variables/variables.index",
            )
        ]
    out: list[Diagnostic] = []
    n = bundle.num_shards
    sizes: dict[int, int] = {}
    for i in range(n):
        shard = root / "variables" / f"variables.data-{i:05d}-of-{n:05d}"
        if shard.is_file():
            sizes[i] = shard.stat().st_size
        else:
            out.append(
                make(
                    "tf.variables-missing",
                    f"data shard {shard.name} is missing (the index names {n} shard(s)): a partial upload",
                    path=f"variables/{shard.name}",
                )
            )
    short = [k for k, (s, off, size) in bundle.entries.items() if s in sizes and off + size > sizes[s]]
    if short:
        out.append(
            make(
                "tf.variables-missing",
                f"{len(short)} tensor(s) lie past the end of their data shard (e.g. {short[0]}): the copy is truncated",
                path="variables/",
            )
        )
    if tracked:
        values = [k for k in bundle.entries if k.endswith("/.ATTRIBUTES/VARIABLE_VALUE")]
        if len(values) < tracked:
            out.append(
                make(
                    "tf.variables-missing",
                    f"the object graph tracks {tracked} variable(s) but the checkpoint holds {len(values)} value(s)",
                    path="variables/variables.index",
                )
            )
    else:
        missing = [v for v in tf1_vars if v not in bundle.entries]
        if missing:
            out.append(
                make(
                    "tf.variables-missing",
                    f"{len(missing)} graph variable(s) have no checkpoint value, e.g. {', '.join(missing[:3])}",
                    path="variables/variables.index",
                )
            )
    return out


def check_unsaved_variables(mg: Any, walker: GraphWalker) -> list[Diagnostic]:
    """Variables a signature reads that the checkpoint-restore call never restores (TF2 exports).

    In a TF2 SavedModel the signature calls and the restore call each take their variable handles as inputs.
    A handle fed to a signature but not to the restore call belongs to a variable the exporter did not track
    (e.g. a Keras 3 model held as a plain attribute of a ``tf.Module``): the server loads, and the first
    predict fails with "Could not find variable ...".
    """
    if not mg.object_graph_def.nodes or not mg.HasField("saver_def"):
        return []
    restore = walker.nodes.get(mg.saver_def.restore_op_name.split(":")[0])
    restored = {n.name for n in walker.upstream(restore.input if restore is not None else []) if n.op == "VarHandleOp"}
    # variables the init op assigns (e.g. asset paths) need no checkpoint value
    restored |= {node_name(n.input[0]) for n in walker.graph.node if n.op == "AssignVariableOp" and n.input}
    out: list[Diagnostic] = []
    for key, sig in sorted(mg.signature_def.items()):
        if key.startswith("__"):  # __saved_model_init_op
            continue
        read = walker.upstream(t.name for t in sig.outputs.values())
        unsaved = sorted(n.name for n in read if n.op == "VarHandleOp" and n.name not in restored)
        if unsaved:
            out.append(
                make(
                    "tf.variables-unsaved",
                    f"signature '{key}' reads {len(unsaved)} variable(s) the SavedModel never saves "
                    f"(e.g. {', '.join(unsaved[:3])}): predict will fail with 'Could not find variable'",
                    path="saved_model.pb",
                )
            )
    return out


def check_assets(root: Path, mg: Any, walker: GraphWalker, roots: list[Any]) -> list[Diagnostic]:
    names = [a.filename for a in mg.asset_file_def]
    coll = mg.collection_def.get("saved_model_assets") if "saved_model_assets" in mg.collection_def else None
    for any_msg in coll.any_list.value if coll is not None else []:
        try:
            names.append(tfproto.parse_binary(tfproto.AssetFileDef, any_msg.value).filename)  # type: ignore[attr-defined]
        except Exception:
            continue
    out = [
        make(
            "tf.asset-missing",
            f"asset '{name}' is declared by the SavedModel but assets/{name} does not exist",
            path=f"assets/{name}",
        )
        for name in dict.fromkeys(names)
        if name and not (root / "assets" / name).is_file()
    ]
    for path, where in walker.absolute_file_reads(roots):
        out.append(
            make(
                "tf.asset-missing",
                f"the graph reads '{path}' ({where}), an absolute path on the build "
                "host that does not exist in the serving container",
                path="saved_model.pb",
            )
        )
    return out
