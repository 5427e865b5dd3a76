"""Read a TorchServe handler (or model file) with :mod:`ast`: what it imports, defines and loads. Never run it."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field

#: Top-level modules the GDC PyTorch prebuilt image provides besides the standard library.
IMAGE_MODULES = frozenset(
    {
        "torch",
        "torchvision",
        "torchaudio",
        "torchtext",
        "ts",
        "numpy",
        "PIL",
        "captum",
        "packaging",
        "psutil",
        "requests",
        "yaml",
        "pkg_resources",
        "setuptools",
        "typing_extensions",
        "google",
        "nvgpu",
        "sympy",
        "networkx",
        "jinja2",
        "filelock",
        "fsspec",
        "mpmath",
        "urllib3",
        "certifi",
        "idna",
        "charset_normalizer",
    }
)

#: TorchServe's built-in handlers (``--handler image_classifier``).
BUILTIN_HANDLERS = (
    "base_handler",
    "image_classifier",
    "image_segmenter",
    "object_detector",
    "text_classifier",
    "densenet_handler",
    "vision_handler",
    "text_handler",
)


@dataclass
class Finding:
    kind: str
    """``invalid`` (will not import / no entry point) or ``nested`` (relies on package layout)."""
    message: str


@dataclass
class ModuleInfo:
    findings: list[Finding] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    torch_loads: list[tuple[int, bool, bool]] = field(default_factory=list)
    """(line, passes map_location, passes weights_only) for each torch.load / torch.jit.load call."""
    defines_initialize: bool = False
    parsed: bool = True
    """False when the source is not valid Python (the only finding then says why)."""


def _optional(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True when the import sits in a ``try`` that catches ImportError (an optional dependency)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try):
            for h in node.handlers:
                names = [h.type] if not isinstance(h.type, ast.Tuple) else list(h.type.elts)
                if h.type is None or any(
                    isinstance(n, ast.Name) and n.id in {"ImportError", "ModuleNotFoundError", "Exception"}
                    for n in names
                ):
                    return True
    return False


def analyze(source: str, filename: str, archive: set[str]) -> ModuleInfo:
    """Analyze one module. ``archive`` holds the archive's entry names (``utils/prep.py``, ``vocab.txt``)."""
    info = ModuleInfo()
    try:
        tree = ast.parse(source, filename=filename)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        info.findings.append(
            Finding(
                "invalid",
                f"{filename} does not parse: {getattr(exc, 'msg', exc)}" + (f" (line {line})" if line else ""),
            )
        )
        info.parsed = False
        return info
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    top_py = {n[:-3] for n in archive if n.endswith(".py") and "/" not in n}
    packages = {n.split("/", 1)[0] for n in archive if "/" in n}
    basenames = {n.rsplit("/", 1)[-1][:-3] for n in archive if n.endswith(".py")}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            info.findings.append(
                Finding(
                    "nested",
                    f"{filename} line {node.lineno}: relative import "
                    f"'from {'.' * node.level}{node.module or ''} import ...' fails: the archive "
                    "is extracted flat and the handler is not imported as a package",
                )
            )
            continue
        mods = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        )
        for mod in mods:
            root = mod.split(".")[0]
            if root in sys.stdlib_module_names or root in IMAGE_MODULES or root in top_py or root in packages:
                continue
            if _optional(node, parents):
                continue
            leaf = mod.rsplit(".", 1)[-1]
            if "." in mod and leaf in basenames:
                info.findings.append(
                    Finding(
                        "nested",
                        f"{filename} line {getattr(node, 'lineno', 0)}: 'import {mod}' needs the "
                        f"package folder '{root}/', but the archive only has {leaf}.py (flattened)",
                    )
                )
            else:
                info.findings.append(
                    Finding(
                        "invalid",
                        f"{filename} line {getattr(node, 'lineno', 0)}: imports '{mod}', which is "
                        "neither in the archive nor installed in the image",
                    )
                )
    for stmt in _top_level(tree.body):
        if isinstance(stmt, ast.ClassDef):
            info.classes.append(stmt.name)
            info.defines_initialize |= any(isinstance(b, ast.FunctionDef) and b.name == "initialize" for b in stmt.body)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
            info.functions.append(stmt.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_torch_load(node.func):
            kws = {k.arg for k in node.keywords}
            info.torch_loads.append((node.lineno, "map_location" in kws or len(node.args) > 1, "weights_only" in kws))
    return info


def _top_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements run at import: the module body, descending into if/try blocks."""
    out: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, ast.If):
            out += _top_level(stmt.body) + _top_level(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            out += _top_level(stmt.body)
        else:
            out.append(stmt)
    return out


def _is_torch_load(func: ast.expr) -> bool:
    if not isinstance(func, ast.Attribute) or func.attr != "load":
        return False
    v = func.value
    return (isinstance(v, ast.Name) and v.id == "torch") or (
        isinstance(v, ast.Attribute) and v.attr == "jit" and isinstance(v.value, ast.Name) and v.value.id == "torch"
    )
