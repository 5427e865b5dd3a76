"""PyTorch pods adopt the warm idle TorchServe of their runtime, and their workers are forked by the pod's zygote:
the same process tree, folder, log and predictions as a cold pod, the same failures, and nothing left running.

(The mechanics without Java: tests/unit/test_ts_warm.py and test_ts_zygote.py.)
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from sandbox.engine import Sandbox
from sandbox.errors import DeployFailed
from sandbox.images import resolve
from sandbox.process import ProcessRecord, wait_until
from sandbox.process import _group_alive as group_alive  # any live process left in the group
from sandbox.runtimes.base import PodSpec
from sandbox.runtimes.forkserver import ForkServers
from sandbox.runtimes.torchserve import TorchServePod, worker_python_script
from sandbox.settings import Settings

from . import artifacts
from .conftest import Outcome, predictions

pytestmark = [pytest.mark.torchserve, pytest.mark.slow]
IMAGE = "pytorch-cpu.2-4"
INSTANCES = [[1.0, 2.0, 3.0, 4.0]]


def idle_servers(sb: Sandbox, image: str = IMAGE) -> dict[str, ProcessRecord]:
    """The running idle TorchServes of ``image``'s runtime, from their records (what `down` stops). The session
    sandbox also keeps one for each other runtime that a test deployed on before."""
    python = str(TorchServePod.prepare(resolve(image), print))
    spawning = sb.settings.state_dir / "pods" / "spawning"
    found = {path.stem: ProcessRecord.load(path) for path in spawning.glob("warm-torchserve-*.json")}
    return {name: r for name, r in found.items() if r is not None and r.is_alive() and r.argv[:1] == [python]}


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def members(groups: list[int]) -> list[str]:
    """The live processes of these process groups, for a failure message."""
    found = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(process.pid) in groups and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(f"{process.pid} {process.info['status']} {cmdline(process)[:150]}")
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def forked_workers(pod_pid: int) -> list[psutil.Process]:
    """Workers forked by the pod's zygote (a zygote's children)."""
    zygotes = [p for p in tree(pod_pid) if "ts_zygote.py" in cmdline(p) and "ts_zygote.py" not in _parent(p)]
    return [c for z in zygotes for c in z.children() if c.status() != psutil.STATUS_ZOMBIE]


def _parent(process: psutil.Process) -> str:
    parent = process.parent()
    return cmdline(parent) if parent is not None else ""


def linear_reference() -> list[list[float]]:
    import torch

    with torch.no_grad():
        return artifacts._linear()(torch.tensor(INSTANCES)).tolist()  # type: ignore[no-any-return]


def test_a_deploy_adopts_the_idle_torchserve_and_forks_its_worker(
    sandbox: Sandbox, deploy: Callable[..., Outcome], scratch: Callable[[str], Path]
) -> None:
    idle = wait_until(lambda: idle_servers(sandbox), timeout=120)
    assert idle, "the sandbox keeps an idle TorchServe of pytorch-cpu.2-4 (GDC_SANDBOX_WARM_IMAGES)"
    [(idle_name, idle_record)] = idle.items()
    outcome = deploy(artifacts.torchscript_linear(scratch("art"), scratch("src")), IMAGE, force=False)
    assert outcome.served, outcome.error
    [served] = predictions(sandbox, outcome.endpoint, INSTANCES)
    assert served == pytest.approx(linear_reference()[0], abs=1e-6)

    [pod] = [p for p in sandbox.pods() if p["image"] == IMAGE and p["pid"] == idle_record.pid]  # adopted
    folder = sandbox.settings.run_dir / "pods" / pod["name"]
    assert (folder / "model-store" / "model.mar").is_file() and (folder / "config.properties").is_file()
    assert pod["log"] == str(sandbox.settings.log_dir / "pods" / f"{pod['name']}.log")
    log = Path(pod["log"]).read_text()
    assert "Model server started." in log and '"POST /models?url=model.mar&initial_workers=1' in log
    assert not (sandbox.settings.run_dir / "warm" / idle_name).exists()
    replacement = idle_servers(sandbox)
    assert replacement and idle_name not in replacement  # the next deploy has one too

    [worker] = forked_workers(pod["pid"])
    assert os.getpgid(worker.pid) == pod["pid"]  # in the pod's process group: stopped with the pod
    assert f"[PID]{worker.pid}" in log and worker.cwd().startswith(tempfile.gettempdir())
    launcher = next(p for p in tree(pod["pid"]) if "ts_worker.py" in cmdline(p))
    launcher.kill()  # how TorchServe stops a worker: the forked worker ends with it, and TorchServe starts another
    assert wait_until(lambda: not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE, timeout=30)
    assert wait_until(lambda: [w for w in forked_workers(pod["pid"]) if w.pid != worker.pid], timeout=120)
    status = wait_until(lambda: sandbox.predict(outcome.endpoint, INSTANCES)[0] == 200, timeout=120)
    assert status, "the restarted worker serves again"


def test_down_stops_the_idle_torchserve_and_adopted_pods_also_after_the_control_plane_was_killed(
    tmp_path: Path, scratch: Callable[[str], Path]
) -> None:
    folder = artifacts.torchscript_linear(scratch("art"), scratch("src"))
    for kill_control_plane in (False, True):
        sb = Sandbox(
            Settings(home=tmp_path / f"home-{kill_control_plane}", s3_port=0, gateway_port=0, warm_images=IMAGE)
        )
        try:
            sb.up()
            idle = wait_until(lambda sb=sb: idle_servers(sb), timeout=120)
            assert idle
            sb.upload(folder, "s3://models/warm/1", progress=False)
            pod_pid = next(iter(idle.values())).pid
            sb.deploy("s3://models/warm/1", IMAGE, "warm-ep")
            assert [p["pid"] for p in sb.pods()] == [pod_pid]  # adopted; the new idle server is not listed as a pod
            groups = [pod_pid, *(r.pid for r in wait_until(lambda sb=sb: idle_servers(sb), timeout=30).values())]
            assert [(w.name, w.state) for w in sb.stack.warm_processes()] == [(n, "warm") for n in idle_servers(sb)]
            if kill_control_plane:
                os.kill(sb.running().control.pid, signal.SIGKILL)
            stopped = sb.down()
            gone = wait_until(lambda groups=groups: not [g for g in groups if group_alive(g)], timeout=15)
            assert gone, f"after kill -9: {kill_control_plane}: {members(groups)}"
            assert "pod/default-warm-ep" in " ".join(stopped)
            assert not [s for s in stopped if "warm-torchserve" in s and s.startswith("pod/")]
            assert not list((sb.settings.state_dir / "pods").rglob("warm-*.json"))
            if not kill_control_plane:
                assert not list((sb.settings.run_dir / "warm").glob("warm-*"))
        finally:
            sb.down()


class TodaysWorkers(TorchServePod):
    """A pod whose workers are started cold by the image's Python, as before the zygote: the reference."""

    def stage(self) -> None:
        super().stage()
        (self.spec.pod_dir / "worker-python").write_text(worker_python_script(str(self.python()), self.worker_logs))


AFTER_THE_ANSWER = re.compile(r'RuntimeError\("\{\} - \{\}"\.format\(code, result\)\)|RuntimeError: \d{3} - ')
"""The lines of TorchServe's worker that re-raise its answer to a failed load (model_service_worker.py: ``sendall``
the 500, then ``raise RuntimeError(...)``). The frontend kills the worker once it has that answer, so whether these
last lines get written at all is a race inside TorchServe, on every kind of pod alike: they are left out of the
comparison. The exception that made the load fail is written before the answer and is compared."""


def start_pod(kind: type[TorchServePod], folder: Path, root: Path, forkservers: ForkServers | None) -> str:
    """Start a pod of ``folder``; its DeployFailed as ``reason: message`` plus its exception lines."""
    name = f"{kind.__name__.lower()}-{'warm' if forkservers else 'cold'}"
    spec = PodSpec(
        name=name,
        image=resolve(IMAGE),
        artifact_dir=folder,
        pod_dir=root / "pods" / name,
        log_path=root / "logs" / f"{name}.log",
        forkservers=forkservers,
    )
    pod = kind(spec)
    try:
        pod.start(timeout=120)
    except DeployFailed as exc:
        errors = exc.details.split("model server log (last lines):")[0]
        errors = "".join(line for line in errors.splitlines(keepends=True) if not AFTER_THE_ANSWER.search(line))
        return f"{exc.code}: {exc.message}\n" + re.sub(r"pid=\d+|\d{10,}", "N", errors)
    pod.stop()
    return "served"


@pytest.mark.parametrize("builder", ["handler-imports-tomllib", "torchscript-new-operator"])
def test_failures_are_the_same_cold_adopted_and_as_before(builder: str, tmp_path: Path) -> None:
    build = {
        "handler-imports-tomllib": lambda out, src: artifacts.custom_handler(
            out, src, artifacts.PY39_BREAKERS["tomllib"]
        ),
        "torchscript-new-operator": artifacts.torchscript_new_operator,
    }[builder]
    (tmp_path / "src").mkdir()
    folder = build(tmp_path / "art", tmp_path / "src")
    before = start_pod(TodaysWorkers, folder, tmp_path, None)
    assert before != "served" and "deploy.ModelLoadFailed" in before
    assert start_pod(TorchServePod, folder, tmp_path, None) == before  # cold pod, forked worker
    forkservers = ForkServers(tmp_path / "forkservers", run_dir=tmp_path / "warm")
    try:
        TorchServePod.warm_up(forkservers, resolve(IMAGE))
        assert start_pod(TorchServePod, folder, tmp_path, forkservers) == before  # adopted, forked worker
    finally:
        forkservers.close()
