"""Read a TorchServe handler (or model file) with :mod:`ast`: what it imports, defines and loads. Never run it."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field

#: Top-level modules the PyTorch images' runtime provides besides the standard library: torch, torchvision,
#: TorchServe, captum and their dependencies (sandbox.runtimes.torch_envs installs exactly these; no
#: torchaudio or torchtext).
IMAGE_MODULES = frozenset(
    {
        "torch",
        "torchvision",
        "ts",
        "captum",
        "matplotlib",
        "mpl_toolkits",
        "pylab",
        "contourpy",
        "cycler",
        "fontTools",
        "kiwisolver",
        "pyparsing",
        "dateutil",
        "six",
        "importlib_resources",
        "zipp",
        "numpy",
        "PIL",
        "packaging",
        "psutil",
        "requests",
        "yaml",
        "pkg_resources",
        "setuptools",
        "_distutils_hack",
        "pip",
        "wheel",
        "typing_extensions",
        "sympy",
        "networkx",
        "jinja2",
        "markupsafe",
        "filelock",
        "fsspec",
        "mpmath",
        "triton",
        "urllib3",
        "certifi",
        "idna",
        "charset_normalizer",
        "isympy",
    }
)

#: Standard-library modules newer than some Python the images run: module -> first Python that has it.
NEWER_STDLIB = {"tomllib": (3, 11)}

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
    torch_loads: list[tuple[int, bool, bool | None]] = field(default_factory=list)
    """(line, passes map_location, weights_only) for each torch.load / torch.jit.load call; weights_only is
    None when not passed (the torch version's default applies), False when passed and not the constant True."""
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


def _parse(source: str, filename: str, python: tuple[int, int]) -> ast.Module | Finding:
    """The module's tree as Python ``python`` reads it, or why that Python cannot read it."""
    try:
        return ast.parse(source, filename=filename, feature_version=python)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        try:
            ast.parse(source, filename=filename)
        except (SyntaxError, ValueError):
            return Finding("invalid", f"{filename} does not parse: {getattr(exc, 'msg', exc)}{where}")
        return Finding(
            "invalid",
            f"{filename} does not parse on Python {python[0]}.{python[1]}, the image's Python: "
            f"{getattr(exc, 'msg', exc)}{where}",
        )


def analyze(source: str, filename: str, archive: set[str], python: tuple[int, int] = (3, 11)) -> ModuleInfo:
    """Analyze one module as the image's Python ``python`` runs it.

    ``archive`` holds the archive's entry names (``utils/prep.py``, ``vocab.txt``).
    """
    info = ModuleInfo()
    tree = _parse(source, filename, python)
    if isinstance(tree, Finding):
        info.findings.append(tree)
        info.parsed = False
        return info
    info.findings += _union_annotations(tree, filename, python)
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
            stdlib = root in sys.stdlib_module_names and NEWER_STDLIB.get(root, (0, 0)) <= python
            if stdlib or root in IMAGE_MODULES or root in top_py or root in packages:
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
                newer = NEWER_STDLIB.get(root)
                why = f" (it is in the standard library from Python {newer[0]}.{newer[1]})" if newer else ""
                info.findings.append(
                    Finding(
                        "invalid",
                        f"{filename} line {getattr(node, 'lineno', 0)}: imports '{mod}', which is "
                        f"neither in the archive nor installed in the image (Python {python[0]}.{python[1]}){why}",
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
            kws = {k.arg: k.value for k in node.keywords}
            weights_only = kws.get("weights_only")
            if isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Attribute):
                value: bool | None = False  # torch.jit.load: no weights_only
            elif weights_only is None:
                value = None
            else:
                value = isinstance(weights_only, ast.Constant) and weights_only.value is True
            info.torch_loads.append((node.lineno, "map_location" in kws or len(node.args) > 1, value))
    return info


def _union_annotations(tree: ast.Module, filename: str, python: tuple[int, int]) -> list[Finding]:
    """``def f(x: int | None)``: Python < 3.10 evaluates the annotation when the ``def`` runs and raises TypeError."""
    if python >= (3, 10) or any(
        isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    ):
        return []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        args = node.args
        annotations = [a.annotation for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a.annotation]
        annotations += [a.annotation for a in (args.vararg, args.kwarg) if a is not None and a.annotation]
        annotations += [node.returns] if node.returns else []
        for annotation in annotations:
            if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(annotation)):
                return [
                    Finding(
                        "invalid",
                        f"{filename} line {annotation.lineno}: the annotation '{ast.unparse(annotation)}' is "
                        f"evaluated when '{node.name}' is defined, and Python {python[0]}.{python[1]} (the image's) "
                        "has no '|' between types: TypeError: unsupported operand type(s) for |. Add "
                        "'from __future__ import annotations' at the top or write Optional[...]/Union[...]",
                    )
                ]
    return []


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
