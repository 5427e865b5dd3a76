"""Extract a customer's ``.tar.gz`` / ``.tgz`` / ``.tar`` / ``.zip`` without trusting it.

Every member goes through :func:`tarfile.data_filter` (PEP 706), zip members too, converted to a
``TarInfo``: ``..`` escapes, links that point outside the folder and device files are refused with
the filter's own reason, and absolute names are refused too (the filter would quietly strip them).
Sizes are checked before anything is written (the sum of the declared sizes against ``max_bytes``)
and while writing (a zip whose header lies stops at its declared size), and the member count is
bounded, so a zip bomb is refused, not unpacked.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PureWindowsPath
from typing import IO

from sandbox.errors import UsageError

MAX_MEMBERS = 20_000
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
_CHUNK = 1 << 20


class UnsafeArchive(UsageError):
    """An archive that would write outside its folder, or more than the size limit."""

    code = "archive.unsafe"


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def extract(archive: Path, dest: Path, max_bytes: int) -> None:
    """Extract ``archive`` into the (new or empty) folder ``dest``; raise :class:`UnsafeArchive` on any escape."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _extract_zip(zf, archive.name, dest, max_bytes)
        else:
            with tarfile.open(archive) as tf:
                _extract_tar(tf, archive.name, dest, max_bytes)
    except (tarfile.ReadError, tarfile.CompressionError, zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, tarfile.FilterError):
            raise _refused(archive.name, str(exc)) from None
        raise UsageError(
            f"{archive.name} is not a readable archive: {exc}",
            code="archive.unreadable",
            hint="pass a .tar.gz, .tgz, .tar or .zip of the version folder, or the extracted folder itself",
        ) from None


def _refused(name: str, why: str) -> UnsafeArchive:
    return UnsafeArchive(
        f"{name} was refused: {why}",
        hint="nothing was extracted outside the output folder; ask for an archive made with "
        "`tar czf model.tgz -C VERSION_FOLDER .`, or extract it yourself and pass the folder",
    )


def _check_size(name: str, total: int, count: int, max_bytes: int) -> None:
    if total > max_bytes:
        raise _refused(
            name,
            f"its members add up to more than {max_bytes:,} bytes "
            "(the extraction limit, GDC_SANDBOX_MAX_EXTRACT_BYTES)",
        )
    if count > MAX_MEMBERS:
        raise _refused(name, f"it holds more than {MAX_MEMBERS:,} entries")


def _judge(member: tarfile.TarInfo, name: str, dest: Path) -> tarfile.TarInfo:
    """PEP 706's data filter, plus: an absolute member name is refused (the filter would quietly strip it)."""
    if member.name.startswith(("/", "\\")) or PureWindowsPath(member.name).drive:
        raise _refused(name, f"member {member.name!r} has an absolute path")
    try:
        return tarfile.data_filter(member, str(dest))
    except tarfile.FilterError as exc:
        raise _refused(name, str(exc)) from None


def _extract_tar(tf: tarfile.TarFile, name: str, dest: Path, max_bytes: int) -> None:
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tf:
        total += member.size
        _check_size(name, total, len(members) + 1, max_bytes)
        _judge(member, name, dest)
        members.append(member)
    tf.extractall(dest, members=members, filter="data")


def _as_tarinfo(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tarfile.TarInfo:
    """The zip entry as a TarInfo, so that the same PEP 706 filter judges both formats."""
    member = tarfile.TarInfo(info.filename)
    mode = info.external_attr >> 16
    member.size = info.file_size
    member.mode = stat.S_IMODE(mode) or (0o755 if info.is_dir() else 0o644)
    if stat.S_ISLNK(mode):
        member.type = tarfile.SYMTYPE
        member.linkname = zf.read(info)[:4096].decode("utf-8", "replace")
        member.size = 0
    elif info.is_dir():
        member.type = tarfile.DIRTYPE
    return member


def _extract_zip(zf: zipfile.ZipFile, name: str, dest: Path, max_bytes: int) -> None:
    infos = zf.infolist()
    _check_size(name, sum(i.file_size for i in infos), len(infos), max_bytes)
    for info in infos:
        member = _judge(_as_tarinfo(zf, info), name, dest)
        target = dest / member.name
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
        elif member.issym():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(member.linkname)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as out:
                _copy_bounded(src, out, info.file_size, name)


def _copy_bounded(src: IO[bytes], out: IO[bytes], limit: int, name: str) -> None:
    written = 0
    while chunk := src.read(_CHUNK):
        written += len(chunk)
        if written > limit:
            raise _refused(name, "a member holds more bytes than its header declares (a zip bomb)")
        out.write(chunk)
