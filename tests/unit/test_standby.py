"""The standby pool with a real child process that stands in for the TF server (no TensorFlow needed): a claimed
standby becomes the pod, in the pod's folder, environment and log, and is recorded like a pod."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.process import ProcessRecord
from sandbox.runtimes.standby import StandbyPool
from sandbox.runtimes.tensorflow import REPO_ROOT

FAKE_SERVER = """
import json, os, sys, tempfile
from sandbox.runtimes.tfserving.standby import _become

print("imported the framework", file=sys.stderr, flush=True)
line = sys.stdin.readline()
if line.strip():
    flags = _become(json.loads(line))
    print(json.dumps({"flags": flags, "cwd": os.getcwd(), "pod_var": os.environ.get("POD_VAR"),
                      "tmp": tempfile.gettempdir()}), flush=True)
"""


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[StandbyPool]:
    (tmp_path / "fake_server.py").write_text(FAKE_SERVER)
    records = tmp_path / "records"
    records.mkdir()
    pool = StandbyPool(
        tmp_path / "logs",
        record_path=lambda name: records / f"{name}.json",
        release=lambda name: (records / f"{name}.json").unlink(missing_ok=True),
    )
    yield pool
    pool.close()


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)]), **extra}


def test_a_claimed_standby_becomes_the_pod(pool: StandbyPool, tmp_path: Path) -> None:
    pool.prepare(sys.executable, "fake_server", env(tmp_path))
    assert len(list((tmp_path / "records").glob("standby-*.json"))) == 1  # `down` can stop it
    pod_dir, pod_tmp, log = tmp_path / "pod", tmp_path / "pod-tmp", tmp_path / "pod.log"
    pod_dir.mkdir()
    pod_tmp.mkdir()
    process = pool.claim(
        sys.executable,
        name="pod-a",
        flags=["--rest_api_port=1"],
        log_path=log,
        env=env(tmp_path, POD_VAR="a", TMPDIR=str(pod_tmp)),
        cwd=pod_dir,
        record_path=tmp_path / "records" / "pod-a.json",
        scratch_dir=pod_tmp,
    )
    assert process is not None
    assert process._popen is not None and process._popen.wait(timeout=60) == 0
    lines = log.read_text().splitlines()
    assert lines[0] == "imported the framework"  # what a cold start prints first stays first
    assert json.loads(lines[1]) == {
        "flags": ["--rest_api_port=1"],
        "cwd": str(pod_dir),
        "pod_var": "a",
        "tmp": str(pod_tmp),
    }
    record = ProcessRecord.load(tmp_path / "records" / "pod-a.json")
    assert record is not None and (record.name, record.pid, record.log_path) == ("pod-a", process.pid, str(log))
    assert [p.name for p in (tmp_path / "records").iterdir()] == ["pod-a.json"]
    assert not list((tmp_path / "logs").glob("*.log"))  # its own log moved into the pod's
    assert pool.claim(
        sys.executable, name="pod-b", flags=[], log_path=log, env={}, cwd=pod_dir, record_path=None, scratch_dir=None
    ) is None  # one standby serves one pod


def test_a_dead_standby_is_not_handed_out_and_close_stops_the_waiting_one(pool: StandbyPool, tmp_path: Path) -> None:
    pool.prepare(sys.executable, "no_such_module_here", env(tmp_path))
    waiting = pool._idle[sys.executable].process
    assert waiting._popen is not None
    waiting._popen.wait(timeout=60)
    claim = dict(name="pod", flags=[], log_path=tmp_path / "p.log", env={}, cwd=tmp_path, record_path=None)
    assert pool.claim(sys.executable, scratch_dir=None, **claim) is None  # type: ignore[arg-type]
    assert not list((tmp_path / "records").iterdir())

    pool.prepare(sys.executable, "fake_server", env(tmp_path))
    live = pool._idle[sys.executable].process
    pool.prepare(sys.executable, "fake_server", env(tmp_path))  # one per interpreter: no second one
    assert pool._idle[sys.executable].process is live
    pool.close()
    assert not live.is_alive()
    assert not list((tmp_path / "records").iterdir())
    pool.prepare(sys.executable, "fake_server", env(tmp_path))  # closed: nothing new starts
    assert not pool._idle
