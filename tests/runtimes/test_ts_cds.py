"""TorchServe's frontend maps its classes from a class-data-sharing archive that the sandbox makes once per runtime
and JVM (sandbox/runtimes/ts_cds.py); a missing, stale, foreign or broken archive never changes what a pod does."""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from sandbox.engine import Sandbox
from sandbox.images import resolve
from sandbox.runtimes import ts_cds
from sandbox.runtimes.torchserve import TorchServePod

from . import artifacts
from .conftest import Outcome, predictions

IMAGE = "pytorch-cpu.2-4"
needs_java = pytest.mark.skipif(ts_cds.java_binary() is None, reason="no java here")


def fake_runtime(root: Path, jar: bytes = b"not a jar") -> Path:
    """A runtime folder with TorchServe's layout (its interpreter, its frontend jar); returns the interpreter."""
    frontend = root / "lib" / "python3.9" / "site-packages" / "ts" / "frontend"
    frontend.mkdir(parents=True)
    (frontend / "model-server.jar").write_bytes(jar)
    (root / "bin").mkdir()
    (root / "bin" / "python").write_text("")
    return root / "bin" / "python"


@pytest.mark.torchserve
@pytest.mark.slow
def test_a_pod_maps_the_frontend_archive_and_serves(
    sandbox: Sandbox, deploy: Callable[..., Outcome], scratch: Callable[[str], Path]
) -> None:
    python = TorchServePod.prepare(resolve(IMAGE), print)
    outcome = deploy(artifacts.torchscript_linear(scratch("art"), scratch("src")), IMAGE, force=False)
    assert outcome.served, outcome.error
    assert predictions(sandbox, outcome.endpoint, [[1.0, 2.0, 3.0, 4.0]])
    archive = ts_cds.archive_path(python)
    assert archive is not None and archive.is_file()  # made by the first TorchServe of the runtime
    [pod] = [p for p in sandbox.pods() if p["deployedModel"].startswith(outcome.endpoint + "-")]
    root = psutil.Process(pod["pid"])
    [java] = [p for p in [root, *root.children(recursive=True)] if p.name() == "java"]
    assert str(archive) in {m.path for m in java.memory_maps()}
    assert not os.listdir(java.cwd())  # CDS takes TorchServe's '.' on the class path only when it is empty
    log = Path(pod["log"]).read_text()
    assert "Model server started." in log and "[cds" not in log


@needs_java
def test_a_foreign_or_broken_archive_is_ignored_without_a_word(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsa"
    broken.write_bytes(b"\0" * 4096)
    for archive in (broken, tmp_path / "missing.jsa"):
        args = [*ts_cds.FRONTEND_VMARGS.split(), f"-XX:SharedArchiveFile={archive}", ts_cds.QUIET]
        run = subprocess.run([str(ts_cds.java_binary()), *args, "-version"], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        assert "cds" not in (run.stdout + run.stderr).lower() and "archive" not in run.stderr.lower()


def test_the_archive_is_named_after_what_it_was_made_from(tmp_path: Path) -> None:
    python = fake_runtime(tmp_path / "rt")
    first = ts_cds.archive_path(python)
    assert first is not None and first.parent == tmp_path / "rt" / ".cds"
    assert ts_cds.archive_path(python) == first
    assert ts_cds.archive_path(python, ts_cds.FRONTEND_VMARGS + " -Xmx1g") != first
    jar = next((tmp_path / "rt").rglob("model-server.jar"))
    jar.write_bytes(b"another TorchServe")
    assert ts_cds.archive_path(python) != first  # another TorchServe: another archive, the old one unused
    assert ts_cds.archive_path(fake_runtime(tmp_path / "rt2")) != ts_cds.archive_path(python)


def test_no_torchserve_no_archive(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    assert ts_cds.archive_path(tmp_path / "bin" / "python") is None
    assert ts_cds.vmargs(tmp_path / "bin" / "python") == ts_cds.FRONTEND_VMARGS


@needs_java
def test_when_making_it_fails_pods_start_without_it_and_it_is_tried_again_an_hour_later(tmp_path: Path) -> None:
    python = fake_runtime(tmp_path / "rt")  # its jar is no jar: the frontend cannot start
    assert ts_cds.vmargs(python) == ts_cds.FRONTEND_VMARGS
    archive = ts_cds.archive_path(python)
    assert archive is not None and not archive.exists()
    failed = archive.with_suffix(".failed")
    assert "exited with status" in failed.read_text()
    stamp = failed.stat().st_mtime_ns
    assert ts_cds.vmargs(python) == ts_cds.FRONTEND_VMARGS and failed.stat().st_mtime_ns == stamp
    assert not list(archive.parent.glob("*.partial"))
    an_hour_ago = failed.stat().st_mtime - ts_cds.RETRY_AFTER
    os.utime(failed, (an_hour_ago, an_hour_ago))
    assert ts_cds.vmargs(python) == ts_cds.FRONTEND_VMARGS and failed.stat().st_mtime_ns > stamp  # tried again


def test_while_another_process_makes_it_pods_start_without_it(tmp_path: Path) -> None:
    python = fake_runtime(tmp_path / "rt")
    archive = ts_cds.archive_path(python)
    assert archive is not None
    archive.parent.mkdir(parents=True)
    with open(archive.with_suffix(".lock"), "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert ts_cds.vmargs(python) == ts_cds.FRONTEND_VMARGS
    assert not archive.exists() and not archive.with_suffix(".failed").exists()  # not made, nor marked failed


def test_a_runtime_cache_it_cannot_write_to_starts_pods_without_it(tmp_path: Path) -> None:
    python = fake_runtime(tmp_path / "rt")
    (tmp_path / "rt" / ".cds").write_text("a file where the archive's folder would be")
    assert ts_cds.vmargs(python) == ts_cds.FRONTEND_VMARGS
