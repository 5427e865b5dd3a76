"""Fork servers with a real parent process that stands in for the TF one (the same fork loop, no TensorFlow):
each forked child is one pod, in the pod's folder, environment, log and session, recorded like a pod."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sandbox.process import ProcessRecord, wait_until
from sandbox.runtimes.forkserver import ForkServers
from sandbox.runtimes.tensorflow import REPO_ROOT

# The TF fork server's own loop, with a stand-in for `python -m sandbox.runtimes.tfserving` that prints what
# the child became instead of serving.
FAKE_PARENT = """
import json, os, sys, tempfile, types
from sandbox.runtimes.tfserving import forkserver

print("imported the framework", file=sys.stderr, flush=True)

def main(flags):
    print(json.dumps({"flags": flags, "cwd": os.getcwd(), "pod_var": os.environ.get("POD_VAR"),
                      "tmp": tempfile.gettempdir(), "sid": os.getsid(0) == os.getpid()}), flush=True)
    return 3

sys.exit(forkserver.serve_orders(types.SimpleNamespace(main=main)))
"""


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ForkServers]:
    (tmp_path / "fake_parent.py").write_text(FAKE_PARENT)
    records = tmp_path / "records"
    records.mkdir()
    servers = ForkServers(
        tmp_path / "logs",
        record_path=lambda name: records / f"{name}.json",
        release=lambda name: (records / f"{name}.json").unlink(missing_ok=True),
    )
    yield servers
    servers.close()


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)]), **extra}


def spawn(servers: ForkServers, tmp_path: Path, name: str) -> tuple[int, Path, Path]:
    pod_dir, pod_tmp, log = tmp_path / name, tmp_path / f"{name}-tmp", tmp_path / f"{name}.log"
    pod_dir.mkdir()
    pod_tmp.mkdir()
    process = servers.spawn(
        sys.executable,
        name=name,
        flags=[f"--model_name={name}"],
        log_path=log,
        env=env(tmp_path, POD_VAR=name, TMPDIR=str(pod_tmp)),
        cwd=pod_dir,
        record_path=tmp_path / "records" / f"{name}.json",
        scratch_dir=pod_tmp,
    )
    assert process is not None
    assert wait_until(lambda: not process.is_alive(), timeout=60)
    record = ProcessRecord.load(tmp_path / "records" / f"{name}.json")
    assert record is not None and (record.name, record.pid, record.log_path) == (name, process.pid, str(log))
    return process.pid, pod_dir, pod_tmp


def test_each_pod_is_a_child_forked_into_its_own_folder_environment_log_and_session(
    servers: ForkServers, tmp_path: Path
) -> None:
    servers.prepare(sys.executable, "fake_parent", env(tmp_path))
    assert len(list((tmp_path / "records").glob("forkserver-*.json"))) == 1  # `down` can stop it
    parent = servers._servers[sys.executable].pid
    for name in ("pod-a", "pod-b"):  # one parent, any number of pods
        pid, pod_dir, pod_tmp = spawn(servers, tmp_path, name)
        lines = (tmp_path / f"{name}.log").read_text().splitlines()
        assert lines[0] == "imported the framework"  # what a cold start prints first stays first
        assert json.loads(lines[1]) == {
            "flags": [f"--model_name={name}"],
            "cwd": str(pod_dir),
            "pod_var": name,
            "tmp": str(pod_tmp),
            "sid": True,
        }
        assert pid != parent
    assert psutil.Process(parent).status() != psutil.STATUS_ZOMBIE
    assert not [c for c in psutil.Process(parent).children() if c.status() == psutil.STATUS_ZOMBIE]  # reaped


def test_no_server_means_a_cold_start_and_close_stops_it(servers: ForkServers, tmp_path: Path) -> None:
    order = dict(name="pod", flags=[], log_path=tmp_path / "p.log", env={}, cwd=tmp_path, record_path=None)
    assert servers.spawn(sys.executable, scratch_dir=None, **order) is None  # type: ignore[arg-type]
    servers.prepare(sys.executable, "no_such_module_here", env(tmp_path))
    dead = servers._servers[sys.executable]
    assert wait_until(lambda: not dead.is_alive(), timeout=60)
    assert servers.spawn(sys.executable, scratch_dir=None, **order) is None  # type: ignore[arg-type]

    servers.prepare(sys.executable, "fake_parent", env(tmp_path))  # a dead one is replaced
    live = servers._servers[sys.executable]
    assert live is not dead and live.is_alive()
    servers.prepare(sys.executable, "fake_parent", env(tmp_path))  # one per interpreter
    assert servers._servers[sys.executable] is live
    servers.close()
    assert not live.is_alive()
    assert not list((tmp_path / "records").iterdir())
    servers.prepare(sys.executable, "fake_parent", env(tmp_path))  # closed: nothing new starts
    assert not servers._servers
