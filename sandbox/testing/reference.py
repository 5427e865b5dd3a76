"""What the framework itself answers in this process: the reference served answers are compared with.

Tests and scenarios compare the served answer with this, not with a string: TensorFlow words some errors
differently by CPU (oneDNN or Eigen kernels: ``In[0] is not a matrix`` on one machine, ``In[0] and In[1] has
different ndims`` on another), and the fidelity claim is "the same framework says the same thing for the same
graph and input". The graph runs as TF Serving runs it: the ``serve`` MetaGraph in a TF1 session, variables
restored only when ``variables/`` holds an index, tensors fed by name with no Python-side shape check.

>>> reference = saved_model_reference(export_dir)          # doctest: +SKIP
>>> reference([[1.0, 1.0]])                               # doctest: +SKIP
[[3.5]]
>>> reference_error(reference, [1.0, 1.0])                # doctest: +SKIP
'In[0] is not a matrix'
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def run_saved_model(
    export_dir: Path, inputs: Mapping[str, Any], signature: str = "serving_default"
) -> dict[str, np.ndarray]:
    """Run ``signature`` on ``inputs`` (alias -> array-like); outputs by alias. Raises TensorFlow's ``OpError``."""
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.saved_model.loader_impl import SavedModelLoader

    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        loader = SavedModelLoader(str(export_dir))
        saver, _ = loader.load_graph(graph, ["serve"])
        if (Path(export_dir) / "variables" / "variables.index").exists():
            loader.restore_variables(session, saver)
        loader.run_init_ops(session, ["serve"])
        sig = loader.get_meta_graph_def_from_tags(["serve"]).signature_def[signature]
        aliases = sorted(sig.outputs)
        options = config_pb2.CallableOptions()
        options.feed.extend(sig.inputs[k].name for k in inputs)
        options.fetch.extend(sig.outputs[a].name for a in aliases)
        run = session._make_callable_from_options(options)
        values = [_array(value, tf.dtypes.as_dtype(sig.inputs[k].dtype)) for k, value in inputs.items()]
        return dict(zip(aliases, run(*values), strict=True))


def saved_model_reference(export_dir: Path, signature: str = "serving_default") -> Callable[[Any], Any]:
    """A scenario ``reference``: row-format instances -> predictions, raising TensorFlow's error as TF Serving
    would meet it. Instances are plain values for a one-input signature, or objects keyed by input alias."""

    def reference(instances: list[Any]) -> Any:
        if instances and all(isinstance(i, dict) and "b64" not in i for i in instances):
            inputs = {k: [_b64(i[k]) for i in instances] for k in instances[0]}
        else:
            inputs = {_only_input(export_dir, signature): [_b64(i) for i in instances]}
        outputs = run_saved_model(export_dir, inputs, signature)
        if len(outputs) == 1:
            return next(iter(outputs.values())).tolist()
        return [{k: v[row].tolist() for k, v in outputs.items()} for row in range(len(instances))]

    return reference


def _only_input(export_dir: Path, signature: str) -> str:
    from tensorflow.python.saved_model.loader_impl import parse_saved_model

    for graph in parse_saved_model(str(export_dir)).meta_graphs:
        if "serve" in graph.meta_info_def.tags:
            (alias,) = graph.signature_def[signature].inputs
            return str(alias)
    raise AssertionError(f"{export_dir} has no 'serve' MetaGraph")


def _b64(value: Any) -> Any:
    """``{"b64": ...}`` as the bytes TF Serving feeds the graph; anything else unchanged."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value


def _array(value: Any, dtype: Any) -> np.ndarray:
    return np.asarray(value, dtype=object if dtype.name == "string" else dtype.as_numpy_dtype)


def reference_error(reference: Callable[[Any], Any], instances: Any) -> str:
    """The first line of the error the framework raises in-process for ``instances`` (any framework's
    reference); AssertionError if it answers instead."""
    try:
        answer = reference(instances)
    except Exception as exc:  # the framework's own exception type: tf.errors.OpError, RuntimeError, ...
        return str(getattr(exc, "message", exc)).splitlines()[0]
    raise AssertionError(f"the framework answered {answer!r} for {instances!r}; the case expects an error")
