"""What `repro` and `artifact:` scenarios accept as SOURCE, and the archives they refuse."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.cli import main
from sandbox.repro.archive import UnsafeArchive, extract
from sandbox.repro.source import materialize, slug

LIMIT = 1024 * 1024


def _tar(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tf.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


def _zip(path: Path, *entries: tuple[str, bytes], symlink: tuple[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink[0])
            info.external_attr = 0o120777 << 16
            zf.writestr(info, symlink[1])
    return path


MALICIOUS: dict[str, Callable[[Path], Path]] = {
    "tar-dotdot": lambda d: _tar(d / "a.tar.gz", (_member("../escaped.txt"), b"x")),
    "tar-absolute": lambda d: _tar(d / "a.tar.gz", (_member(str(d / "abs-escaped.txt")), b"x")),
    "tar-symlink-out": lambda d: _tar(d / "a.tgz", (_member("link", tarfile.SYMTYPE, "../../.."), b"")),
    "tar-symlink-then-write-through": lambda d: _tar(
        d / "a.tgz", (_member("dir", tarfile.SYMTYPE, str(d)), b""), (_member("dir/escaped.txt"), b"x")
    ),
    "tar-over-limit": lambda d: _tar(d / "a.tgz", (_member("big.bin"), b"\0" * (LIMIT + 1))),
    "zip-dotdot": lambda d: _zip(d / "a.zip", ("../escaped.txt", b"x")),
    "zip-absolute": lambda d: _zip(d / "a.zip", (str(d / "abs-escaped.txt"), b"x")),
    "zip-symlink-out": lambda d: _zip(d / "a.zip", symlink=("link", "/etc")),
    "zip-bomb": lambda d: _zip(d / "a.zip", *[(f"zeros{i}.bin", b"\0" * LIMIT) for i in range(8)]),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archives_are_refused_and_nothing_lands_outside(case: str, tmp_path: Path) -> None:
    evil = MALICIOUS[case](tmp_path)
    dest = tmp_path / "out" / "extracted"
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UnsafeArchive) as refused:
        extract(evil, dest, LIMIT)
    assert refused.value.message.startswith(f"{evil.name} was refused: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({*before, "out"})
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "abs-escaped.txt").exists()
    assert not any(p.is_file() for p in dest.rglob("*")) or case == "zip-bomb"


def test_repro_refuses_a_malicious_archive_with_exit_2_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GDC_SANDBOX_HOME", str(tmp_path / "home"))
    evil = MALICIOUS["tar-dotdot"](tmp_path)
    code = main(["repro", str(evil), "--image", "tf2-cpu.2-18", "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 2
    assert "error[archive.unsafe]: a.tar.gz was refused:" in err and "outside the destination" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar.gz"]  # no report, no home, no escaped file


def test_the_size_limit_comes_from_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.settings import Settings

    monkeypatch.setenv("GDC_SANDBOX_MAX_EXTRACT_BYTES", str(LIMIT))
    assert Settings().max_extract_bytes == LIMIT


def test_a_wrapped_archive_uses_its_one_folder_as_the_version_folder(tmp_path: Path) -> None:
    wrapped = _tar(
        tmp_path / "export.tgz",
        (_member("my_export/saved_model.pb"), b"pb"),
        (_member("my_export/variables/variables.index"), b"i"),
    )
    source = materialize(str(wrapped), tmp_path / "work", max_bytes=LIMIT)
    assert source.kind == "archive" and source.folder.name == "my_export"
    assert (source.folder / "saved_model.pb").read_bytes() == b"pb"
    assert "wraps the folder my_export/" in source.note
    flat = _zip(tmp_path / "flat.zip", ("saved_model.pb", b"pb"), ("variables/variables.index", b"i"))
    source = materialize(str(flat), tmp_path / "work2", max_bytes=LIMIT)
    assert source.folder == tmp_path / "work2" / "extracted" and source.note == "extracted from the archive"


def test_a_mar_becomes_a_version_folder_holding_it_under_its_own_name(tmp_path: Path) -> None:
    mar = tmp_path / "mnist.mar"
    mar.write_bytes(b"PK")
    source = materialize(str(mar), tmp_path / "work", max_bytes=LIMIT)
    assert source.kind == "mar" and [p.name for p in source.folder.iterdir()] == ["mnist.mar"]


def test_an_unknown_source_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    code = main(["repro", str(tmp_path / "notes.txt"), "--image", "tf2-cpu.2-18", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "error[source.invalid]" in err and "neither a folder, an archive nor a .mar" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("./exports/my_model/3/", "my-model-3"),
        ("customer.tar.gz", "customer"),
        ("s3://models/m/1", "m-1"),
        ("Model.MAR", "model"),
    ],
)
def test_names_come_from_the_source(given: str, expected: str) -> None:
    assert slug(given) == expected


def test_an_image_the_sandbox_cannot_run_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "export").mkdir()
    code = main(["repro", str(tmp_path / "export"), "--image", "tf2-cpu.2-6", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "error[repro.image-not-runnable]: image tf2-cpu.2-6 cannot run in this sandbox" in err
    assert not (tmp_path / "o").exists()


def test_scenario_new_never_overwrites_a_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "export").mkdir()
    (tmp_path / "mine.yaml").write_text("scenario: mine\n")
    argv = [
        "scenario",
        "new",
        str(tmp_path / "export"),
        "--image",
        "tf2-cpu.2-18",
        "--out",
        str(tmp_path / "mine.yaml"),
    ]
    code = main(argv)
    assert code == 2 and "error[scenario.exists]" in capsys.readouterr().err
    assert (tmp_path / "mine.yaml").read_text() == "scenario: mine\n"
