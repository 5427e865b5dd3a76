"""Load one SavedModel version the way TF Serving does: the ``serve`` MetaGraphDef in a TF1 session.

Signatures run by tensor name through ``Session`` callables, so the C++ runtime reports shape and
dtype errors in its own words, and nothing is restored as Python objects (hidden bugs such as
signatures closing over untracked variables surface exactly as on the real server).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import errors, tflog

_READER = "external/org_tensorflow/tensorflow/cc/saved_model/reader.cc"
# Ops the TensorFlow Python package registers but the C++ tensorflow_model_server binary does not:
# tf.py_function / tf.numpy_function bodies live in the Python interpreter.
PYTHON_ONLY_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
_OP_HINT = (
    "Make sure the Op and Kernel are registered in the binary running in this process. Note that if you are loading "
    "a saved graph which used ops from tf.contrib (e.g. `tf.contrib.resampler`), accessing should be done before "
    "importing the graph, as contrib ops are lazily registered when the module is first accessed."
)
_LOADER = "external/org_tensorflow/tensorflow/cc/saved_model/loader.cc"


def _tags_str(tags: Sequence[str]) -> str:
    return "{ " + " ".join(tags) + " }"


def _read_saved_model(path: str) -> Any:
    """Parse ``saved_model.pb`` (or ``.pbtxt``) with protobuf only; raise TF's reader errors."""
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    pb, pbtxt = os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pbtxt")
    if os.path.isfile(pb):
        try:
            with open(pb, "rb") as f:
                sm.ParseFromString(f.read())
        except Exception as exc:
            raise errors.ServingError("DATA_LOSS", f"Can't parse {pb} as binary proto") from exc
    elif os.path.isfile(pbtxt):
        try:
            with open(pbtxt, encoding="utf-8") as f:
                text_format.Parse(f.read(), sm)
        except Exception as exc:
            raise errors.ServingError("DATA_LOSS", f"Can't parse {pbtxt} as text proto") from exc
    else:
        raise errors.not_found(
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}. "
            "Check that the directory exists and that you have the right permissions for accessing it."
        )
    return sm


class Servable:
    """One loaded model version: a session plus its MetaGraphDef and signature map."""

    def __init__(self, name: str, version: int, path: str, session: Any, meta_graph: Any) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.session = session
        self.meta_graph = meta_graph
        self.signatures = dict(meta_graph.signature_def)
        self.metadata_json: str | None = None
        """The REST metadata body, built on first request (see metadata.metadata_json)."""
        self._callables: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}
        self._lock = threading.Lock()

    def run(self, feeds: Sequence[tuple[str, np.ndarray]], fetches: Sequence[str]) -> list[np.ndarray]:
        """Run the graph: feed tensors by name, fetch tensors by name (TF raises ``OpError``)."""
        key = (tuple(n for n, _ in feeds), tuple(fetches))
        fn = self._callables.get(key)
        if fn is None:
            from tensorflow.core.protobuf import config_pb2

            opts = config_pb2.CallableOptions()
            opts.feed.extend(key[0])
            opts.fetch.extend(key[1])
            with self._lock:
                fn = self._callables.get(key) or self.session._make_callable_from_options(opts)
                self._callables[key] = fn
        return list(fn(*[a for _, a in feeds]))

    def close(self) -> None:
        self.session.close()


def load_servable(name: str, version: int, path: str, tags: Sequence[str] = ("serve",)) -> Servable:
    """Load ``path`` (one version folder); raise ServingError with TF's own message on failure."""
    import tensorflow as tf

    start = time.monotonic()
    tflog.info(f"{_READER}:83", f"Reading SavedModel from: {path}")
    try:
        sm = _read_saved_model(path)
        wanted = set(tags)
        if not any(set(mg.meta_info_def.tags) == wanted for mg in sm.meta_graphs):
            raise errors.not_found(
                f"Could not find meta graph def matching supplied tags: {_tags_str(tags)}. To inspect available"
                " tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`"
            )
        tflog.info(f"{_READER}:52", f"Reading meta graph with tags {_tags_str(tags)}")
        mg = next(mg for mg in sm.meta_graphs if set(mg.meta_info_def.tags) == wanted)
        _reject_python_only_ops(mg)
        has_variables = os.path.exists(os.path.join(path, "variables", "variables.index"))
        if not has_variables:
            tflog.info(
                f"{_LOADER}:167",
                "The specified SavedModel has no variables; no checkpoints were restored. File does not exist: "
                f"{os.path.join(path, 'variables', 'variables.index')}",
            )
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph, config=tf.compat.v1.ConfigProto(allow_soft_placement=True))
        try:
            with graph.as_default():
                meta_graph = _load_into(session, graph, path, list(tags), has_variables)
        except BaseException:
            session.close()
            raise
    except Exception as exc:
        err = errors.from_exception(exc)
        took = int((time.monotonic() - start) * 1e6)
        tflog.info(
            f"{_LOADER}:466",
            f"SavedModel load for tags {_tags_str(tags)}; Status: fail: {err.to_string()}. Took {took} microseconds.",
        )
        raise err from exc
    took = int((time.monotonic() - start) * 1e6)
    tflog.info(
        f"{_LOADER}:466",
        f"SavedModel load for tags {_tags_str(tags)}; Status: success: OK. Took {took} microseconds.",
    )
    return Servable(name, version, path, session, meta_graph)


def _reject_python_only_ops(meta_graph: Any) -> None:
    """Fail like the real binary on ops that exist only inside a Python process."""
    gd = meta_graph.graph_def
    nodes = [n.op for n in gd.node] + [n.op for f in gd.library.function for n in f.node_def]
    for op in nodes:
        if op in PYTHON_ONLY_OPS:
            raise errors.not_found(f"Op type not registered '{op}' in binary running on {hostname()}. {_OP_HINT}")


def _load_into(session: Any, graph: Any, path: str, tags: list[str], has_variables: bool) -> Any:
    """Import the MetaGraphDef, restore ``variables/`` when present, run the init ops (C++ ``LoadSavedModel``).

    Like the C++ loader, a SavedModel without variables loads: predictions then fail at run time.
    """
    from tensorflow.python.saved_model import loader_impl

    ldr = loader_impl.SavedModelLoader(path)
    saver, _ = ldr.load_graph(graph, tags)
    if has_variables:
        tflog.info(f"{_LOADER}:234", "Restoring SavedModel bundle.")
        ldr.restore_variables(session, saver)
    ldr.run_init_ops(session, tags)
    return ldr.get_meta_graph_def_from_tags(tags)


def hostname() -> str:
    return socket.gethostname()
