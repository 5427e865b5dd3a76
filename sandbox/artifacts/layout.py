"""Look at what a user uploaded: which files sit where, and what kind of artifact it is meant to be."""

from __future__ import annotations

import os
from pathlib import Path

MAX_FILES = 20_000
MAX_DEPTH = 8
LIMIT_BYTES = 10 * 1024**3
LFS_MAGIC = b"version https://git-lfs.github.com/spec/"
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".torchscript")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
SM_NAMES = ("saved_model.pb", "saved_model.pbtxt")
_JUNK = {".DS_Store", "Thumbs.db", ".gitkeep", ".keep"}


class Listing:
    """Files under the artifact root, relative POSIX paths -> size."""

    def __init__(self) -> None:
        self.files: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self.files.values())

    def top(self) -> list[str]:
        return [f for f in self.files if "/" not in f]

    def named(self, *names: str) -> list[str]:
        """Files whose base name is one of ``names``, shallowest first."""
        return sorted((f for f in self.files if f.rsplit("/", 1)[-1] in names), key=lambda f: (f.count("/"), f))

    def suffixed(self, *suffixes: str) -> list[str]:
        return sorted(f for f in self.files if f.lower().endswith(suffixes))


def list_dir(root: Path) -> Listing:
    """Walk ``root`` (bounded in count and depth), skipping OS junk files and zero-byte 'folder' markers."""
    listing = Listing()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        depth = 0 if rel_dir == "." else rel_dir.count("/") + 1
        if depth >= MAX_DEPTH:
            dirnames[:] = []
        for name in sorted(filenames):
            if name in _JUNK:
                continue
            if len(listing.files) >= MAX_FILES:
                return listing
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            try:
                listing.files[rel] = (Path(dirpath) / name).stat().st_size
            except OSError:
                listing.files[rel] = 0
    return listing


def is_lfs_pointer(path: Path, size: int | None = None) -> bool:
    """True for a Git LFS pointer stub (a small text file starting with the LFS spec line)."""
    try:
        if (size if size is not None else path.stat().st_size) > 1024:
            return False
        with path.open("rb") as fh:
            return fh.read(len(LFS_MAGIC)) == LFS_MAGIC
    except OSError:
        return False


def archive_members(path: Path, limit: int = MAX_FILES) -> list[str] | None:
    """Member names of a zip/tar file (bounded), or None when it is not a readable archive."""
    import tarfile  # only for archives: the common artifact never pays for these imports
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return [i.filename for i in zf.infolist()[:limit]]
        if tarfile.is_tarfile(path):
            names: list[str] = []
            with tarfile.open(path) as tf:
                for member in tf:
                    names.append(member.name)
                    if len(names) >= limit:
                        break
            return names
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError):
        return None
    return None


def model_inside(members: list[str]) -> str | None:
    """The first member that is a SavedModel or a .mar (what an archive was meant to deliver)."""
    for m in members:
        base = m.rstrip("/").rsplit("/", 1)[-1]
        if base in SM_NAMES or base.endswith(".mar"):
            return m
    return None


def is_checkpoint(files: list[str]) -> bool:
    """TF1/TF2 training checkpoints: ``checkpoint``, ``*.index`` + ``*.data-*``, ``*.meta``, ``*.ckpt*``."""
    bases = [f.rsplit("/", 1)[-1] for f in files]
    return any(b == "checkpoint" or b.endswith((".meta", ".index")) or ".data-0" in b or ".ckpt" in b for b in bases)
