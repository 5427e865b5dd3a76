"""Walk a MetaGraph's GraphDef and function library: which ops the server will run, and which files it reads."""

# No `from __future__ import annotations` here: typing.NamedTuple would compile() each string annotation,
# and a process's first compile() costs `gdc-sandbox check` a few milliseconds.
import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

#: Ops that open a file named by an input tensor.
FILE_READING_OPS = {
    "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2",
    "ReadFile",
    "TextLineDataset",
    "TFRecordDataset",
    "TFRecordDatasetV2",
    "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2",
    "ImmutableConst",
    "LoadAndRemapMatrix",
}
_ABSOLUTE = re.compile(rb"^(/[^/]|[A-Za-z]:[\\/]|\\\\|(gs|s3|hdfs|file)://)")


class OpUse(NamedTuple):
    op: str
    node: str
    where: str
    """``graph`` or the function name the node is in."""
    attrs: dict[str, bytes]
    """attr name -> serialized AttrValue."""


def _func_refs(node: Any) -> Iterator[str]:
    """Names of functions a node calls through its attrs (``f``, ``then_branch``, ``body``, lists...)."""
    for value in node.attr.values():
        kind = value.WhichOneof("value")
        if kind == "func":
            yield value.func.name
        elif kind == "list":
            for f in value.list.func:
                yield f.name


class GraphWalker:
    """Index of one MetaGraph: graph nodes, functions, and reachability through function attrs."""

    def __init__(self, meta_graph: Any) -> None:
        self.graph = meta_graph.graph_def
        self.functions = {f.signature.name: f for f in self.graph.library.function}
        self.nodes = {n.name: n for n in self.graph.node}
        self.stripped_ops = list(meta_graph.meta_info_def.stripped_op_list.op)

    def reachable_functions(self, roots: Iterable[Any]) -> set[str]:
        seen: set[str] = set()
        stack = [name for node in roots for name in _func_refs(node)]
        stack += [n.op for n in roots if n.op in self.functions]
        while stack:
            name = stack.pop()
            if name in seen or name not in self.functions:
                continue
            seen.add(name)
            for node in self.functions[name].node_def:
                stack.extend(_func_refs(node))
                if node.op in self.functions:
                    stack.append(node.op)
        return seen

    def upstream(self, tensor_names: Iterable[str]) -> list[Any]:
        """Graph nodes the given tensors (``node:0``) depend on, following data and control inputs."""
        seen: dict[str, Any] = {}
        stack = [node_name(t) for t in tensor_names]
        while stack:
            name = stack.pop()
            if name in seen or name not in self.nodes:
                continue
            node = self.nodes[name]
            seen[name] = node
            stack.extend(node_name(i) for i in node.input)
        return list(seen.values())

    def uses(self, roots: list[Any]) -> list[OpUse]:
        """Every op run by ``roots`` and the functions they reach (function calls themselves excluded)."""
        out = [OpUse(n.op, n.name, "graph", _attrs(n)) for n in roots if n.op not in self.functions]
        for fname in sorted(self.reachable_functions(roots)):
            out += [
                OpUse(n.op, n.name, fname, _attrs(n))
                for n in self.functions[fname].node_def
                if n.op not in self.functions
            ]
        return out

    def scopes(self, roots: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(where, nodes by name)`` for ``roots`` (``graph``) and each function they reach."""
        yield "graph", {n.name: n for n in roots}
        for fname in sorted(self.reachable_functions(roots)):
            yield fname, {n.name: n for n in self.functions[fname].node_def}

    def absolute_file_reads(self, roots: list[Any]) -> list[tuple[str, str]]:
        """``(path, where)`` for file-reading ops fed by a string constant holding an absolute path."""
        found: list[tuple[str, str]] = []
        for where, by_name, node in self._nodes_of(roots, FILE_READING_OPS):
            for value in constant_strings(by_name, node):
                if _ABSOLUTE.match(value):
                    found.append((value.decode("utf-8", "replace"), where))
        return found

    def string_constants_feeding(self, roots: list[Any], ops: set[str]) -> list[tuple[str, str, list[str]]]:
        """``(op, where, strings)`` for each node of ``ops``: the string constants among its inputs."""
        return [
            (node.op, where, [v.decode("utf-8", "replace") for v in constant_strings(by_name, node)])
            for where, by_name, node in self._nodes_of(roots, ops)
        ]

    def _nodes_of(self, roots: list[Any], ops: set[str]) -> Iterator[tuple[str, dict[str, Any], Any]]:
        for where, by_name in self.scopes(roots):
            for node in by_name.values():
                if node.op in ops:
                    yield where, by_name, node


def constant_strings(by_name: dict[str, Any], node: Any) -> list[bytes]:
    """String values of the Const nodes (through Identity) feeding ``node``'s inputs."""
    values: list[bytes] = []
    for inp in node.input:
        const = _follow_identity(by_name, node_name(inp))
        if const is not None:
            values += const.attr["value"].tensor.string_val
    return values


def _attrs(node: Any) -> dict[str, bytes]:
    return {k: v.SerializeToString(deterministic=True) for k, v in node.attr.items() if not k.startswith("_")}


def node_name(tensor: str) -> str:
    return tensor.lstrip("^").split(":", 1)[0]


def _follow_identity(by_name: dict[str, Any], name: str, hops: int = 4) -> Any | None:
    for _ in range(hops):
        node = by_name.get(name)
        if node is None:
            return None
        if node.op == "Const":
            return node
        if node.op != "Identity" or not node.input:
            return None
        name = node_name(node.input[0])
    return None
