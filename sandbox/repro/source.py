"""Turn what a user or customer hands over into a local version folder.

A SOURCE is a version folder, a ``.tar.gz``/``.tgz``/``.tar``/``.zip`` of one (extracted with
:mod:`sandbox.repro.archive`), a single ``.mar`` file, or ``s3://BUCKET/MODEL_ID/VERSION`` in a running
sandbox. The same function feeds ``gdc-sandbox repro`` and scenarios that say ``artifact:``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sandbox.artifacts import layout
from sandbox.errors import UsageError
from sandbox.repro import archive

Kind = Literal["folder", "archive", "mar", "s3"]
Download = Callable[[str, Path], object]
"""``download(uri, dest)``: copy an s3:// version folder into ``dest``."""


@dataclass
class Source:
    """A SOURCE made local: ``folder`` is what goes to ``s3://BUCKET/MODEL_ID/VERSION/``."""

    given: str
    kind: Kind
    folder: Path
    name: str
    """A short, scenario-safe name (lowercase letters, digits and '-')."""
    note: str = ""
    """Anything done to the source that a reader of the report should know."""


def kind_of(source: str) -> Kind:
    if source.startswith("s3://"):
        return "s3"
    path = Path(source)
    if path.is_dir():
        return "folder"
    if archive.is_archive(path):
        return "archive"
    if path.is_file() and path.name.lower().endswith(".mar"):
        return "mar"
    what = "does not exist" if not path.exists() else "is neither a folder, an archive nor a .mar file"
    raise UsageError(
        f"{source} {what}",
        code="source.invalid",
        hint="give the version folder (holding saved_model.pb or model.mar), a .tar.gz/.tgz/.zip of it, "
        "a model.mar, or s3://BUCKET/MODEL_ID/VERSION in the running sandbox",
    )


def materialize(source: str, workdir: Path, *, max_bytes: int, download: Download | None = None) -> Source:
    """Make ``source`` a local version folder under ``workdir`` (a folder source is used in place)."""
    kind = kind_of(source)
    name = slug(source)
    if kind == "folder":
        return Source(source, kind, Path(source), name)
    if kind == "mar":
        folder = workdir / "version"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, folder / Path(source).name)
        return Source(source, kind, folder, name, f"the version folder holds {Path(source).name} alone")
    if kind == "s3":
        if download is None:
            raise UsageError(f"{source}: an s3:// source needs a running sandbox", code="source.invalid")
        folder = workdir / "version"
        download(source, folder)
        return Source(source, kind, folder, name, "downloaded from the running sandbox's bucket")
    extracted = workdir / "extracted"
    archive.extract(Path(source), extracted, max_bytes)
    inner = _single_wrapper(extracted)
    if inner is None:
        return Source(source, kind, extracted, name, "extracted from the archive")
    rel = inner.relative_to(extracted).as_posix()
    return Source(source, kind, inner, name, f"the archive wraps the folder {rel}/; that folder is the version folder")


def _single_wrapper(root: Path) -> Path | None:
    """The one folder an archive wraps its model in (``tar czf m.tgz export/``), if that is what it does."""
    entries = [p for p in root.iterdir() if p.name not in (".DS_Store", "__MACOSX")]
    if len(entries) != 1 or not entries[0].is_dir() or entries[0].is_symlink():
        return None
    top = {p.name for p in entries[0].iterdir()}
    has_model = bool(top & set(layout.SM_NAMES)) or any(n.endswith(".mar") for n in top)
    return entries[0] if has_model else None


def slug(source: str) -> str:
    """``./exports/my_model/3`` -> ``my-model-3``; ``customer.tar.gz`` -> ``customer``."""
    parts = [p for p in source.rstrip("/").replace("s3://", "").split("/") if p not in ("", ".", "..")]
    last = parts[-1] if parts else "model"
    for suffix in (*archive.ARCHIVE_SUFFIXES, ".mar"):
        if last.lower().endswith(suffix):
            last = last[: -len(suffix)]
    words = [parts[-2], last] if last.isdigit() and len(parts) > 1 else [last]
    text = re.sub(r"[^a-z0-9]+", "-", "-".join(words).lower()).strip("-")
    return (text or "model")[:30].strip("-")
