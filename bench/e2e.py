"""The issue-13 table from one run, each row next to its baseline measured in the same run.

    .venv/bin/python bench/e2e.py [--requests 300] [--restore 12] [--gateway-only]

Starts a private sandbox in a temp folder on free loopback ports, builds tiny TF and PyTorch models, and prints:

- CLI start-up: each command in a new process against the running sandbox, next to ``python -c pass``
  (wall time and CPU time: on a busy machine CPU time is the steadier of the two);
- deploy -> first prediction for a tiny TF and a tiny TorchScript model (PyTorch: next to a cold pod's, in a
  second sandbox that keeps no idle TorchServe);
- gateway latency added over calling the pod directly (p50, one client), the CPU the gateway spends per request
  (the steadier number on a busy machine) next to the pod's, and throughput with 8 concurrent clients through the
  gateway vs direct;
- memory (PSS and USS) of each TF pod while three of them run;
- `up` after a restart with ``--restore`` DeployedModels, until all are Ready.

Loopback only, bounded in count and time. ``bench/check_bench.py`` has the checker rows.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from sandbox.engine import Sandbox
from sandbox.settings import Settings

BIN = Path(sys.executable).parent
BODY = json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]]}).encode()


def row(what: str, value: str, baseline: str = "", ratio: str = "") -> None:
    print(f"{what:<52} {value:>16} {baseline:>22} {ratio:>14}", flush=True)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median wall and median CPU seconds of ``argv`` run ``repeat`` times in new processes."""
    walls, cpus = [], []
    for _ in range(repeat):
        cpu, start = children_cpu(), time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=False)
        walls.append(time.perf_counter() - start)
        cpus.append(children_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def cli_startup(sb: Sandbox, endpoint: str, repeat: int) -> None:
    env = {**os.environ, "GDC_SANDBOX_HOME": str(sb.settings.home)}
    cli = str(BIN / "gdc-sandbox")
    base_wall, base_cpu = run_timed([sys.executable, "-c", "pass"], env, repeat)
    row("python -c pass (baseline)", f"{base_wall * 1000:.0f} ms wall", f"{base_cpu * 1000:.0f} ms CPU")
    commands = (["--help"], ["status"], ["get", "deployedmodels"], ["predict", endpoint, "--instances", "[[1,2]]"])
    for args in commands:
        wall, cpu = run_timed([cli, *args], env, repeat)
        row(
            f"  gdc-sandbox {args[0]}: added over python -c pass",
            f"+{(wall - base_wall) * 1000:.0f} ms wall",
            f"+{(cpu - base_cpu) * 1000:.0f} ms CPU",
            "goal <= +120 ms",
        )


class Caller:
    """POSTs to one URL over one kept-alive connection."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)

    def __call__(self) -> None:
        self.conn.request("POST", self.path, BODY, {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")


def paired_p50(direct_url: str, gateway_url: str, count: int) -> tuple[float, float]:
    """Median latency (ms) of each URL, calls interleaved so that both see the same machine load."""
    calls = {"direct": Caller(direct_url), "gateway": Caller(gateway_url)}
    samples: dict[str, list[float]] = {"direct": [], "gateway": []}
    for _ in range(20):
        for call in calls.values():
            call()  # warm-up
    for _ in range(count):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - start) * 1000)
    return statistics.median(samples["direct"]), statistics.median(samples["gateway"])


def process_cpu(proc: psutil.Process, children: bool = False) -> float:
    """User + system CPU seconds of a process (and of its children alive now: TorchServe's workers)."""
    procs = [proc, *(proc.children(recursive=True) if children else [])]
    return sum(p.cpu_times().user + p.cpu_times().system for p in procs)


def paired_throughput(direct_url: str, gateway_url: str, clients: int, seconds: float) -> tuple[float, float]:
    """Requests per second of each URL with ``clients`` threads, in alternating one-second slices."""
    totals = {direct_url: 0.0, gateway_url: 0.0}
    for _ in range(max(1, int(seconds))):
        for url in totals:
            totals[url] += throughput(url, clients, 1.0)
    return totals[direct_url] / max(1, int(seconds)), totals[gateway_url] / max(1, int(seconds))


def throughput(url: str, clients: int, seconds: float) -> float:
    """Requests per second with ``clients`` threads, each on its own keep-alive connection."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def worker(i: int, call: Callable[[], None]) -> None:
        while time.monotonic() < stop:
            call()
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i, Caller(url))) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def build_models(root: Path) -> dict[str, Path]:
    import keras
    import torch

    from sandbox.export import export_tensorflow, export_torch

    tf_dir = export_tensorflow(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), root / "tf")
    torch_dir = export_torch(torch.nn.Linear(4, 2), root / "torch", example_inputs=torch.zeros(1, 4)).parent
    return {"tf": tf_dir, "torch": torch_dir}


def deploy_first_prediction(sb: Sandbox, uri: str, image: str, endpoint: str) -> float:
    start = time.perf_counter()
    deployment = sb.deploy(uri, image, endpoint)
    status, answer = sb.predict(deployment.endpoint, [[1.0, 2.0, 3.0, 4.0]])
    took = time.perf_counter() - start
    if status != 200:
        raise RuntimeError(f"{image}: {answer}")
    return took


def cold_first_prediction(home: Path, model: Path, image: str) -> float:
    """Deploy -> first prediction in a private sandbox that keeps nothing warm: the pod starts cold."""
    sb = Sandbox(Settings(home=home / "cold", s3_port=0, gateway_port=0, warm_images="none"))
    try:
        sb.up()
        sb.upload(model, "s3://models/bench-cold/1", progress=False)
        return deploy_first_prediction(sb, "s3://models/bench-cold/1", image, "bench-cold")
    finally:
        sb.down()


def pod_url(sb: Sandbox, endpoint: str) -> tuple[str, int]:
    dm = sb.get("Endpoint", endpoint)[0]["status"]["destinations"][0]["deployedModel"]
    pod = next(p for p in sb.pods() if p["deployedModel"] == dm)
    return pod["url"], int(pod["pid"])


def memory_mb(pid: int) -> tuple[float, float]:
    """PSS and USS of a pod's process tree, in MB."""
    root = psutil.Process(pid)
    pss = uss = 0
    for proc in [root, *root.children(recursive=True)]:
        info = proc.memory_full_info()
        pss, uss = pss + info.pss, uss + info.uss
    return pss / 2**20, uss / 2**20


def wait_all_ready(sb: Sandbox, names: list[str], timeout: float) -> None:
    for name in names:
        sb.wait_ready("DeployedModel", name, sb.settings.project, timeout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each throughput run")
    parser.add_argument("--repeat", type=int, default=7, help="runs per CLI command")
    parser.add_argument("--restore", type=int, default=12, help="DeployedModels restored after a restart")
    parser.add_argument("--gateway-only", action="store_true", help="only the deploy and gateway rows")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="gdc-bench-"))
    os.environ.setdefault("KERAS_HOME", str(home / "keras"))
    sb = Sandbox(Settings(home=home / "sandbox", s3_port=0, gateway_port=0))
    print(f"{'what':<52} {'measured':>16} {'same-run baseline':>22} {'ratio / goal':>14}")
    try:
        start = time.perf_counter()
        sb.up()
        row("sandbox up -> ready", f"{time.perf_counter() - start:.2f} s")
        models = build_models(home / "models")
        for framework, image, goal in (("tf", "tf2-cpu.2-18", "1.0 s"), ("torch", "pytorch-cpu.2-4", "2.0 s")):
            uri = f"s3://models/bench-{framework}/1"
            sb.upload(models[framework], uri, progress=False)
            cold = cold_first_prediction(home, models[framework], image) if framework == "torch" else None
            took = deploy_first_prediction(sb, uri, image, f"bench-{framework}")
            baseline = f"cold pod {cold:.2f} s" if cold is not None else ""
            row(f"deploy -> first prediction, tiny {framework}", f"{took:.2f} s", baseline, f"goal <= {goal}")

        if not args.gateway_only:
            cli_startup(sb, "bench-tf", args.repeat)

        for framework in ("tf", "torch"):
            base, pod_pid = pod_url(sb, f"bench-{framework}")
            direct_url = base + ("/v1/models/default:predict" if framework == "tf" else "/predictions/model")
            gateway_url = f"{sb.running().gateway_url}/endpoints/default/bench-{framework}/v1/model:predict"
            control, pod = psutil.Process(sb.running().control.pid), psutil.Process(pod_pid)
            cpu = (process_cpu(control), process_cpu(pod, children=True))
            direct, via = paired_p50(direct_url, gateway_url, args.requests)
            row(f"gateway p50 added, {framework} (1 client)", f"+{via - direct:.2f} ms", f"direct {direct:.2f} ms",
                "goal <= 1 ms")
            gateway_cpu = (process_cpu(control) - cpu[0]) * 1000 / args.requests
            pod_cpu = (process_cpu(pod, children=True) - cpu[1]) * 1000 / (2 * args.requests)
            row(f"  gateway CPU per request, {framework}", f"{gateway_cpu:.2f} ms", f"pod {pod_cpu:.2f} ms")
            direct_rps, via_rps = paired_throughput(direct_url, gateway_url, 8, args.seconds)
            row(f"gateway throughput, {framework} (8 clients)", f"{via_rps:.0f} req/s",
                f"direct {direct_rps:.0f} req/s", f"{via_rps / direct_rps:.0%} (>= 90%)")

        if args.gateway_only:
            return
        names = ["bench-tf-bench-tf-1"]
        for i in (2, 3):
            uri = f"s3://models/bench-tf{i}/1"
            sb.upload(models["tf"], uri, progress=False)
            sb.deploy(uri, "tf2-cpu.2-18", f"bench-tf{i}")
            names.append(f"bench-tf{i}-bench-tf{i}-1")
        pids = [pod_url(sb, ep)[1] for ep in ("bench-tf", "bench-tf2", "bench-tf3")]
        mems = [memory_mb(pid) for pid in pids]
        row("memory per TF pod, 3 running: PSS", f"{statistics.mean(m[0] for m in mems):.0f} MB",
            f"USS {statistics.mean(m[1] for m in mems):.0f} MB", "goal <= 150 MB")
        parents = {psutil.Process(pid).ppid() for pid in pids} - {sb.running().control.pid}
        for parent in parents:  # the fork server they came from, once per runtime
            pss, uss = memory_mb(parent)
            row("  + their fork server (once per TF runtime): PSS", f"{pss - sum(m[0] for m in mems):.0f} MB",
                f"USS {uss - sum(m[1] for m in mems):.0f} MB")

        for i in range(4, args.restore + 1):
            uri = f"s3://models/bench-tf{i}/1"
            sb.upload(models["tf"], uri, progress=False)
            sb.deploy(uri, "tf2-cpu.2-18", f"bench-tf{i}", wait=False)
            names.append(f"bench-tf{i}-bench-tf{i}-1")
        wait_all_ready(sb, names, 300)
        sb.down()
        start = time.perf_counter()
        sb.up()
        wait_all_ready(sb, names[: args.restore], 300)
        row(f"up after restart, {args.restore} TF DeployedModels -> all Ready", f"{time.perf_counter() - start:.1f} s",
            "", "goal <= 10 s (12)")
    finally:
        sb.down()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
