"""Warm idle TorchServes, with a stand-in interpreter that runs no Java: started and recorded like a pod, adopted
by a pod (folder, log, record and the server's view of its files follow), never adopted when dead or unfit, and
stopped with everything they left when closed."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sandbox.images import resolve
from sandbox.process import ProcessRecord, wait_until
from sandbox.runtimes.base import PodSpec
from sandbox.runtimes.forkserver import ForkServers, is_standby
from sandbox.runtimes.torchserve import standby
from sandbox.runtimes.ts_warm import WarmTorchServes

# Stands in for the image's Python running ts_launch.py: notes its PID, says what it was asked to start, then idles.
FAKE_PYTHON = '#!/bin/sh\necho $$ >> "{pids}"\necho "started with $*"\nexec sleep 600\n'


@pytest.fixture
def fake_python(tmp_path: Path) -> Iterator[Path]:
    """The fake interpreter; afterwards, every process it started is gone (a test that leaves one fails)."""
    path = tmp_path / "bin" / "python3.9"
    pids = tmp_path / "bin" / "pids"
    path.parent.mkdir()
    path.write_text(FAKE_PYTHON.format(pids=pids))
    path.chmod(0o755)
    yield path
    started = [int(line) for line in pids.read_text().split()] if pids.exists() else []
    left = [pid for pid in started if running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"idle servers left running: {left}"


@pytest.fixture
def forkservers(tmp_path: Path, fake_python: Path) -> Iterator[ForkServers]:
    """Closed before ``fake_python`` checks that nothing it started is left."""
    records = tmp_path / "records"
    records.mkdir()
    servers = ForkServers(
        tmp_path / "logs" / "forkservers",
        record_path=lambda name: records / f"{name}.json",
        release=lambda name: (records / f"{name}.json").unlink(missing_ok=True),
        run_dir=tmp_path / "run" / "warm",
    )
    yield servers
    servers.close()


def records(tmp_path: Path) -> dict[str, ProcessRecord]:
    found = {path.stem: ProcessRecord.load(path) for path in (tmp_path / "records").glob("*.json")}
    return {name: record for name, record in found.items() if record is not None}


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def pod_spec(tmp_path: Path, name: str = "default-dm-g1-abc123-0") -> PodSpec:
    return PodSpec(
        name=name,
        image=resolve("pytorch-cpu.2-4"),
        artifact_dir=tmp_path / "artifact",
        pod_dir=tmp_path / "run" / "pods" / name,
        log_path=tmp_path / "logs" / "pods" / f"{name}.log",
        spawn_record=tmp_path / "records" / f"{name}.json",
    )


def test_an_idle_server_is_recorded_as_standby_and_started_once(
    forkservers: ForkServers, fake_python: Path, tmp_path: Path
) -> None:
    warm = standby(forkservers)
    assert standby(forkservers) is warm  # one room per ForkServers
    warm.prepare(fake_python, "127.0.0.1", 1)
    warm.prepare(fake_python, "127.0.0.1", 1)  # one is running: nothing more
    [(name, record)] = records(tmp_path).items()
    assert is_standby(name) and record.is_alive()
    folder = tmp_path / "run" / "warm" / name
    assert (folder / "config.properties").is_file() and (folder / "model-store").is_dir()
    log = Path(record.log_path)
    assert wait_until(lambda: "started with" in log.read_text(), timeout=10)
    assert f"--ts-config {record.scratch_dir}/pod/config.properties" in log.read_text()  # its files, through the link


def test_a_pod_takes_over_the_idle_servers_process_folder_log_and_record(
    forkservers: ForkServers, fake_python: Path, tmp_path: Path
) -> None:
    warm = standby(forkservers)
    warm.prepare(fake_python, "127.0.0.1", 1)
    [(warm_name, warm_record)] = records(tmp_path).items()
    assert warm.take(fake_python, "127.0.0.1", 2) is None  # another worker count: another config
    assert warm.take(fake_python, "127.0.0.2", 1) is None  # another host
    idle = warm.take(fake_python, "127.0.0.1", 1)
    assert idle is not None and warm.take(fake_python, "127.0.0.1", 1) is None  # taken once
    spec = pod_spec(tmp_path)
    spec.pod_dir.mkdir(parents=True)
    (spec.pod_dir / "stale").write_text("from a pod of the same name that ran before")
    process = idle.become(spec, warm.release)

    assert process is not None and process.pid == warm_record.pid and process.is_alive()
    assert process.record.name == spec.name and process.record.log_path == str(spec.log_path)
    assert set(records(tmp_path)) == {spec.name}  # the pod's record replaced the idle server's
    assert records(tmp_path)[spec.name].pid == warm_record.pid
    assert not (tmp_path / "run" / "warm" / warm_name).exists() and not (spec.pod_dir / "stale").exists()
    assert (spec.pod_dir / "config.properties").is_file()
    link = Path(warm_record.scratch_dir) / "pod"
    assert link.resolve() == spec.pod_dir.resolve()  # the server finds its model store in the pod's folder
    assert f"model_store={link}/model-store" in (spec.pod_dir / "config.properties").read_text()
    assert wait_until(lambda: "started with" in spec.log_path.read_text(), timeout=10)  # its log is the pod's
    assert not Path(warm_record.log_path).exists()
    assert psutil.Process(process.pid).cwd() == str(spec.pod_dir)
    process.stop()


def test_a_dead_idle_server_is_not_adopted_and_leaves_nothing(
    forkservers: ForkServers, fake_python: Path, tmp_path: Path
) -> None:
    warm = standby(forkservers)
    warm.prepare(fake_python, "127.0.0.1", 1)
    [(name, record)] = records(tmp_path).items()
    os.kill(record.pid, signal.SIGKILL)
    assert wait_until(lambda: not running(record.pid), timeout=10)
    assert warm.take(fake_python, "127.0.0.1", 1) is None
    assert records(tmp_path) == {} and not (tmp_path / "run" / "warm" / name).exists()
    assert not Path(record.scratch_dir).exists() and not Path(record.log_path).exists()
    warm.prepare(fake_python, "127.0.0.1", 1)  # the next deploy starts a new one
    [(new_name, _)] = records(tmp_path).items()
    assert new_name != name


def test_closing_the_fork_servers_stops_idle_servers_and_removes_their_files(
    forkservers: ForkServers, fake_python: Path, tmp_path: Path
) -> None:
    warm = standby(forkservers)
    warm.prepare(fake_python, "127.0.0.1", 1)
    [(name, record)] = records(tmp_path).items()
    forkservers.close()
    assert not running(record.pid)
    assert records(tmp_path) == {} and not (tmp_path / "run" / "warm" / name).exists()
    assert not Path(record.scratch_dir).exists() and not Path(record.log_path).exists()
    warm.prepare(fake_python, "127.0.0.1", 1)  # closed: a late deploy starts nothing
    assert records(tmp_path) == {}


def test_leftover_folders_of_a_killed_control_plane_are_removed(forkservers: ForkServers, tmp_path: Path) -> None:
    leftover = tmp_path / "run" / "warm" / "warm-torchserve-0badf00d"
    (leftover / "model-store").mkdir(parents=True)
    WarmTorchServes(forkservers)
    assert not leftover.exists()


def test_an_idle_server_for_another_worker_count_is_replaced(
    forkservers: ForkServers, fake_python: Path, tmp_path: Path
) -> None:
    warm = standby(forkservers)
    warm.prepare(fake_python, "127.0.0.1", 1)
    [(first, record)] = records(tmp_path).items()
    warm.prepare(fake_python, "127.0.0.1", 2)  # what the last pod needed: the next one likely needs it too
    [(second, _)] = records(tmp_path).items()
    assert second != first and not running(record.pid)
    assert "default_workers_per_model=2" in (tmp_path / "run" / "warm" / second / "config.properties").read_text()
    taken = warm.take(fake_python, "127.0.0.1", 2)
    assert taken is not None
    taken.stop(warm.release)
