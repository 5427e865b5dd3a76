"""Look at what a user uploaded: which files sit where, and what kind of artifact it is meant to be."""

from __future__ import annotations

import os
from collections import deque
from itertools import islice
from pathlib import Path

MAX_FILES = 20_000
"""Files and folders listed under an artifact, i.e. a folder with a model at its top or some levels below it."""
SEARCH_ENTRIES = 2_000
"""Files and folders looked at below a folder without a model at its top, to find one deeper or tell what the
folder holds. A folder where none turns up among these is not an artifact (`check /tmp`, a home folder): the
checker says so instead of reading the whole tree."""
MAX_DEPTH = 8
MAX_ARCHIVE_BYTES = 256 * 1024**2
"""How far into a tar stream the checker reads for the names of its members (a .tar.gz decompresses as it goes)."""
LIMIT_BYTES = 10 * 1024**3
LFS_MAGIC = b"version https://git-lfs.github.com/spec/"
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".torchscript")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
SM_NAMES = ("saved_model.pb", "saved_model.pbtxt")
_JUNK = {".DS_Store", "Thumbs.db", ".gitkeep", ".keep"}


class Listing:
    """Files under the artifact root, relative POSIX paths -> size, shallowest first."""

    def __init__(self) -> None:
        self.files: dict[str, int] = {}
        self.entries = 0
        """Files and folders looked at."""
        self.complete = True
        """False when the walk stopped at its limit of entries or depth before seeing everything."""

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


def list_dir(root: Path, limit: int = MAX_FILES) -> Listing:
    """Walk ``root`` breadth-first (shallowest first, names sorted per folder), skipping OS junk files and not
    following links to folders; stops after ``limit`` files and folders or :data:`MAX_DEPTH` levels."""
    listing = Listing()
    folders: deque[tuple[str, Path, int]] = deque([("", root, 0)])
    while folders:
        rel_dir, folder, depth = folders.popleft()
        try:
            with os.scandir(folder) as it:
                entries = sorted(islice(it, limit - listing.entries + 1), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if listing.entries >= limit:
                listing.complete = False
                return listing
            listing.entries += 1
            rel = rel_dir + entry.name
            if _is_folder(entry):
                if entry.is_symlink():
                    continue
                if depth + 1 > MAX_DEPTH:
                    listing.complete = False
                else:
                    folders.append((rel + "/", Path(entry.path), depth + 1))
            elif entry.name not in _JUNK and _is_file(entry):  # never a device, pipe or socket: reading blocks
                try:
                    listing.files[rel] = entry.stat().st_size
                except OSError:
                    listing.files[rel] = 0
    return listing


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    """A regular file, or a link to one (a dangling link counts: the artifact names a file that is not there)."""
    try:
        return entry.is_file() or not os.path.exists(entry.path)
    except OSError:
        return False


def models(listing: Listing) -> list[str]:
    """The SavedModel folders (``a/b/``, ``""`` for the top) and .mar files in ``listing``, shallowest first."""
    folders = {f.rpartition("/")[0] + "/" if "/" in f else "" for f in listing.named(*SM_NAMES)}
    found = list(folders) + [f for f in listing.files if f.endswith(".mar")]
    return sorted(found, key=lambda f: (f.count("/"), f))  # how many folders down the model file is


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
                    if len(names) >= limit or tf.offset > MAX_ARCHIVE_BYTES:
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
