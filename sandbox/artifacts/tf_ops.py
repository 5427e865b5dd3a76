"""Per-image TensorFlow op registries, shipped as data (``sandbox/data/tf_ops/<version>.txt``).

The files are generated from the real wheels by ``scripts/gen_tf_op_registry.py``: one line per op,
``OpName<TAB>attr,attr``. An image whose version has no file is checked against the nearest older
registry if there is one, else the oldest shipped, and the result says it is approximate.
"""

# No `from __future__ import annotations` here: typing.NamedTuple would compile() each string annotation,
# and a process's first compile() costs `gdc-sandbox check` a few milliseconds.
import os
from functools import cache
from pathlib import Path
from typing import NamedTuple

from sandbox.images import version_tuple

DATA = Path(__file__).resolve().parent.parent / "data" / "tf_ops"

#: Registered in TensorFlow but only runnable with a Python interpreter in the process: the C++ model
#: server in the prebuilt image cannot run them.
PYTHON_ONLY_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}

#: Where well-known out-of-core ops come from (prefix -> library), for the hint.
_LIBRARIES = (
    ("Sentencepiece", "sentencepiece / tensorflow-text"),
    ("SimpleML", "TensorFlow Decision Forests"),
    ("YggdrasilDecisionForests", "TensorFlow Decision Forests"),
    ("Regex", "tensorflow-text"),
    ("Wordpiece", "tensorflow-text"),
    ("Whitespace", "tensorflow-text"),
    ("FastWordpiece", "tensorflow-text"),
    ("FastBert", "tensorflow-text"),
    ("Normalize", "tensorflow-text"),
    ("CaseFold", "tensorflow-text"),
    ("Unicode", "tensorflow-text"),
    ("Split", "tensorflow-text"),
    ("IO>", "tensorflow-io"),
    ("Addons>", "tensorflow-addons"),
)


class Registry(NamedTuple):
    version: str
    """The registry actually used (``2.14``)."""
    ops: dict[str, str]
    """op name -> its attr names as the file has them (``a,b,c``): :meth:`attrs` splits them."""
    approximate: bool = False
    """True when the image's own version has no registry file."""

    def attrs(self, op: str) -> frozenset[str]:
        """The attr names ``op`` defines (empty for an op the registry does not have)."""
        return frozenset(a for a in self.ops.get(op, "").split(",") if a)


@cache
def shipped_versions() -> tuple[str, ...]:
    """The TensorFlow versions with a registry file under ``sandbox/data/tf_ops``, oldest first."""
    return tuple(sorted((f.removesuffix(".txt") for f in os.listdir(DATA) if f.endswith(".txt")), key=version_tuple))


@cache
def _load(version: str) -> dict[str, str]:
    """op name -> ``attr,attr`` of one registry file; attrs are split only for the ops a graph uses."""
    text = (DATA / f"{version}.txt").read_text()
    fields = text.rstrip("\n").replace("\n", "\t").split("\t")  # name, attrs, name, attrs, ...: one op a line
    if len(fields) % 2 or not all(fields[::2]):
        raise ValueError(f"{DATA / version}.txt: a line is not OpName<TAB>attr,attr")
    return dict(zip(fields[::2], fields[1::2], strict=True))


def registry_for(version: str) -> Registry | None:
    """The registry of TensorFlow ``version`` (``2.18``), or the nearest shipped one, or None if none ship."""
    versions = shipped_versions()
    if not versions:
        return None
    if version in versions:
        return Registry(version, _load(version))
    older = [v for v in versions if version_tuple(v) < version_tuple(version)]
    chosen = older[-1] if older else versions[0]
    return Registry(chosen, _load(chosen), approximate=True)


def where_from(op: str) -> str:
    """A guess at the library that defines an unregistered op, for the hint."""
    for prefix, lib in _LIBRARIES:
        if op.startswith(prefix):
            return lib
    return ""


def first_version_with(op: str) -> str | None:
    """The oldest shipped registry that has ``op`` (to say 'added in TF x')."""
    for v in shipped_versions():
        if op in _load(v):
            return v
    return None
