"""Fixtures for the S3 persistence tests: a private data folder and real server processes, always cleaned up."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.s3server.harness import S3Process


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A temp folder removed after the test (data dirs, logs, upload files)."""
    path = Path(tempfile.mkdtemp(prefix="s3server-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def s3_process(workdir: Path) -> Iterator[Callable[..., S3Process]]:
    """Factory: ``s3_process(persist=True)`` starts a server on ``workdir/data``; all are killed at teardown."""
    started: list[S3Process] = []

    def start(persist: bool = True, data_dir: Path | None = None, keys: tuple[str, str] | None = None) -> S3Process:
        log = workdir / f"server-{len(started)}.log"
        proc = S3Process(data_dir or workdir / "data", log, persist=persist, keys=keys)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()
        # pytest shows a test's captured output only when it fails: then the server's own account is there
        print(f"--- {proc.log_path.name} (last lines) ---\n{proc.log_tail(60)}")
