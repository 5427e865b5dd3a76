"""Check a TorchServe ``.mar`` the way the PyTorch prebuilt image will register and load it."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from sandbox.artifacts import handler_ast, torch_pickle
from sandbox.artifacts.torch_judge import judge
from sandbox.diagnostics import Diagnostic, make
from sandbox.images import Image

MAX_ENTRY_BYTES = 512 * 1024 * 1024
"""Serialized files larger than this are not read (the rest of the checks still run)."""
MAX_SOURCE_BYTES = 2 * 1024 * 1024
MANIFEST = "MAR-INF/MANIFEST.json"


def check_mar(path: Path, image: Image, rel: str) -> list[Diagnostic]:
    """All diagnostics for the archive at ``path`` (shown as ``rel``)."""
    out: list[Diagnostic] = []
    if path.name != "model.mar":
        out.append(
            make(
                "mar.wrong-filename",
                f"the archive is named {path.name}; the GDC PyTorch image loads only model.mar",
                path=rel,
            )
        )
    try:
        zf = zipfile.ZipFile(path)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        head = _head(path)
        what = " (it is a gzip/tar: archive with the default --archive-format)" if head[:2] == b"\x1f\x8b" else ""
        out.append(make("mar.not-zip", f"{path.name} is not a zip archive{what}: {exc}", path=rel))
        return out
    with zf:
        out += _check_zip(zf, infos, image, rel)
    return out


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(16)
    except OSError:
        return b""


def _unsafe(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "a '..' path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symlink"
    return None


def _read(zf: zipfile.ZipFile, name: str, limit: int) -> bytes | None:
    try:
        info = zf.getinfo(name)
        if info.file_size > limit:
            return None
        with zf.open(info) as fh:
            return fh.read(limit + 1)[:limit]
    except Exception:
        return None


def _check_zip(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], image: Image, rel: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for info in infos:
        why = _unsafe(info)
        if why:
            out.append(
                make(
                    "mar.unsafe-path",
                    f"entry '{info.filename[:200]}' is {why}; TorchServe refuses or mis-extracts it",
                    path=f"{rel}!{info.filename[:200]}",
                )
            )
    names = {i.filename for i in infos if not i.is_dir()}
    raw = _read(zf, MANIFEST, 1024 * 1024)
    if raw is None:
        nested = [n for n in names if n.endswith("/" + MANIFEST)]
        extra = f"; found {nested[0]}: the zip was made from the parent folder" if nested else ""
        out.append(make("mar.no-manifest", f"{MANIFEST} is missing{extra}", path=rel))
        return out
    try:
        manifest = json.loads(raw.decode("utf-8"))
        model = manifest["model"]
        if not isinstance(model, dict):
            raise TypeError("'model' is not an object")
    except Exception as exc:
        out.append(
            make(
                "mar.no-manifest", f"{MANIFEST} is not valid manifest JSON: {str(exc)[:160]}", path=f"{rel}!{MANIFEST}"
            )
        )
        return out
    name = model.get("modelName")
    if name != "model":
        msg = "has no modelName ('Model name is not defined')" if not name else f"is {name!r}"
        out.append(
            make(
                "mar.model-name",
                f"MANIFEST modelName {msg}; the image serves the model named 'model'",
                path=f"{rel}!{MANIFEST}",
            )
        )
    handler = _check_handler(zf, names, model, image, rel, out)
    _check_serialized(zf, names, model, handler, image, rel, out)
    req = model.get("requirementsFile")
    if req and str(req) in names:
        out.append(
            make(
                "mar.requirements",
                f"the archive carries {req}, but the image starts TorchServe with "
                "install_py_dep_per_model=false: those packages are not installed",
                path=f"{rel}!{req}",
            )
        )
    return out


def _check_handler(
    zf: zipfile.ZipFile, names: set[str], model: dict[str, Any], image: Image, rel: str, out: list[Diagnostic]
) -> handler_ast.ModuleInfo | None:
    handler = str(model.get("handler") or "")
    module, _, function = handler.partition(":")
    if module in handler_ast.BUILTIN_HANDLERS:
        return None
    base = module.replace("\\", "/").rsplit("/", 1)[-1]
    file = base if base.endswith(".py") else base + ".py"
    if not handler or file not in names:
        what = f"handler {handler!r}" if handler else "no handler"
        out.append(
            make(
                "mar.handler-missing",
                f"MANIFEST names {what}, which is not a built-in handler and {file} is not in the archive",
                path=f"{rel}!{MANIFEST}",
                builtins=", ".join(handler_ast.BUILTIN_HANDLERS),
            )
        )
        return None
    info = _analyze(zf, file, names, "mar.handler-invalid", image, rel, out)
    where = f"{rel}!{file}"
    if function and function not in info.functions:
        out.append(
            make(
                "mar.handler-invalid",
                f"handler entry point '{function}' is not a top-level function of {file}",
                path=where,
            )
        )
    elif not function and len(info.classes) != 1 and info.parsed:
        out.append(
            make(
                "mar.handler-invalid",
                f"{file} defines {len(info.classes)} classes "
                f"({', '.join(info.classes) or 'none'}): TorchServe says 'Expected only one class in custom "
                "service code or a function entry point'",
                path=where,
            )
        )
    return info


def _analyze(
    zf: zipfile.ZipFile, file: str, names: set[str], invalid_code: str, image: Image, rel: str, out: list[Diagnostic]
) -> handler_ast.ModuleInfo:
    """Read ``file`` from the archive, analyze it as the image's Python reads it, and report its findings."""
    source = (_read(zf, file, MAX_SOURCE_BYTES) or b"").decode("utf-8", "replace")
    info = handler_ast.analyze(source, file, names, image.python_tuple)
    for f in info.findings:
        code = "mar.extra-files-nested" if f.kind == "nested" else invalid_code
        out.append(make(code, f.message, path=f"{rel}!{file}"))
    return info


def _check_serialized(
    zf: zipfile.ZipFile,
    names: set[str],
    model: dict[str, Any],
    handler: handler_ast.ModuleInfo | None,
    image: Image,
    rel: str,
    out: list[Diagnostic],
) -> None:
    serialized = str(model.get("serializedFile") or "")
    model_file = str(model.get("modelFile") or "")
    uses_base_loader = handler is None or not handler.defines_initialize
    if model_file:
        if model_file not in names:
            out.append(
                make(
                    "mar.model-file-invalid",
                    f"MANIFEST modelFile {model_file} is not in the archive ('Missing the model.py file')",
                    path=f"{rel}!{MANIFEST}",
                )
            )
        else:
            mf = _analyze(zf, model_file, names, "mar.model-file-invalid", image, rel, out)
            if len(mf.classes) != 1 and not mf.findings:
                out.append(
                    make(
                        "mar.model-file-invalid",
                        f"{model_file} defines {len(mf.classes)} classes "
                        f"({', '.join(mf.classes) or 'none'}): 'Expected only one class as model definition'",
                        path=f"{rel}!{model_file}",
                    )
                )
    if not serialized:
        if handler is None:
            out.append(
                make(
                    "mar.serialized-missing",
                    "MANIFEST has no serializedFile and the built-in handler needs one",
                    path=f"{rel}!{MANIFEST}",
                )
            )
        return
    if serialized not in names:
        out.append(
            make(
                "mar.serialized-missing",
                f"MANIFEST serializedFile {serialized} is not in the archive",
                path=f"{rel}!{MANIFEST}",
            )
        )
        return
    data = _read(zf, serialized, MAX_ENTRY_BYTES)
    where = f"{rel}!{serialized}"
    if data is None:
        out.append(
            make("mar.too-large", f"{serialized} is over {MAX_ENTRY_BYTES >> 20} MB and was not inspected", path=where)
        )
        return
    tfile = torch_pickle.inspect_bytes(data)
    judge(tfile, serialized, model_file, uses_base_loader, handler, image, where, out)
