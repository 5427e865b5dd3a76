"""A folder that is not an artifact (`check /tmp`, a home folder) or a big tree: the checker reads a bounded part of
it and says what it expected; a real artifact is still read whole, and a model one level too deep still found."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from sandbox.artifacts import check_artifact, layout
from tests.checker.test_codes import LFS, write_files

ROOT = Path(__file__).resolve().parents[2]


def test_listing_stops_at_its_limit_shallowest_first(tmp_path: Path) -> None:
    write_files(tmp_path / "deep" / "er", 120)
    (tmp_path / "top.txt").write_text("x")
    listing = layout.list_dir(tmp_path, limit=30)
    assert not listing.complete
    assert listing.entries == 30
    assert next(iter(listing.files)) == "top.txt"  # breadth-first: the top before what is below it
    whole = layout.list_dir(tmp_path)
    assert whole.complete and len(whole.files) == 121


def test_listing_stops_at_max_depth(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*[f"d{i}" for i in range(layout.MAX_DEPTH + 1)])
    deep.mkdir(parents=True)
    (deep / "saved_model.pb").write_bytes(b"")
    listing = layout.list_dir(tmp_path)
    assert not listing.complete and not listing.files


def test_big_folder_without_a_model_is_not_read_whole(tf_models: Path, tmp_path: Path) -> None:
    """LFS pointers everywhere and a SavedModel past the limit: neither is opened, one error says why."""
    tree = tmp_path / "home"
    write_files(tree / "a_notes", layout.SEARCH_ENTRIES + 100, content=LFS)
    shutil.copytree(tf_models / "good", tree / "zz" / "exports" / "1")
    report = check_artifact(tree)
    assert report.codes() == ["layout.not-an-artifact"], report.render_text()
    (d,) = report.diagnostics
    assert f"nor do the first {layout.SEARCH_ENTRIES:,} files and folders below it" in d.message
    assert "pass the version folder" in d.hint and "saved_model.pb" in d.hint and "model.mar" in d.hint


def test_big_folder_of_several_models_names_them(tf_models: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        shutil.copytree(tf_models / "good", tmp_path / "models" / name / "1")
    write_files(tmp_path / "models" / "logs", layout.SEARCH_ENTRIES)
    (d,) = check_artifact(tmp_path / "models").diagnostics
    assert d.code == "layout.not-an-artifact"
    assert "hold 2 models (a/1/, b/1/), not one" in d.message


def test_one_model_too_deep_in_a_big_tree_is_still_found(tf_models: Path, tmp_path: Path) -> None:
    inner = tmp_path / "export" / "1"
    shutil.copytree(tf_models / "good", inner)
    write_files(inner / "assets.extra" / "notes", layout.SEARCH_ENTRIES)
    report = check_artifact(tmp_path / "export")
    assert report.codes() == ["layout.nested"], report.render_text()
    assert report.diagnostics[0].path == "1/saved_model.pb"


def test_big_artifact_is_still_read_whole(tf_models: Path, tmp_path: Path) -> None:
    """A model at the top: the listing goes past the search limit, to a pointer stub near the end of the tree."""
    folder = tmp_path / "v1"
    shutil.copytree(tf_models / "good", folder)
    write_files(folder / "assets.extra" / "notes", layout.SEARCH_ENTRIES + 100)
    (folder / "zz").mkdir()
    (folder / "zz" / "weights.bin").write_bytes(LFS)
    assert "layout.lfs-pointer" in check_artifact(folder).codes()


def test_check_never_opens_a_pipe_or_device(tmp_path: Path) -> None:
    """A FIFO (or a device, as in a container's data root) blocks whoever reads it: the checker lists only files."""
    folder = tmp_path / "v"
    folder.mkdir()
    os.mkfifo(folder / "saved_model.pb")
    os.mkfifo(folder / "pipe")
    proc = _check_cli(folder, tmp_path / "home")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_says_what_it_expected(tmp_path: Path) -> None:
    write_files(tmp_path / "tree", layout.SEARCH_ENTRIES + 1)
    proc = _check_cli(tmp_path / "tree", tmp_path / "home")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"error[layout.not-an-artifact] {tmp_path / 'tree'} is not a model artifact: ")
    assert "\n  hint: pass the version folder: the one holding saved_model.pb" in proc.stdout
    assert "will not serve: 1 error (framework unknown" in proc.stdout


def _check_cli(folder: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`gdc-sandbox check FOLDER` in a new process (bounded in time: a blocked read fails the test)."""
    env = {**os.environ, "GDC_SANDBOX_HOME": str(home)}
    cmd = [sys.executable, "-m", "sandbox.cli", "check", str(folder)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=60, env=env)
