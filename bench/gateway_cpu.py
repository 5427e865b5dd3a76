"""Where the gateway's time goes: CPU per request in the client, the gateway (control plane) and the pod.

    .venv/bin/python bench/gateway_cpu.py [--requests 2000] [--frameworks tf torch]

Starts a private sandbox on free loopback ports, deploys a tiny model per framework, then sends the same
requests to the pod directly and through the gateway, one client on one kept-alive connection, and prints
the CPU milliseconds each process spent per request (``/proc/PID/stat`` deltas through psutil): the control
plane's own process (the pods are its children and not counted there), and the pod with its children
(TorchServe's Python workers).

CPU time is the steadier number on a shared machine. When every process is CPU-bound on two saturated cores,
8-client throughput through the gateway over direct is about (client + pod) / (client + pod + gateway) of these
costs (client and pod as called directly): the last row per framework prints that next to the 90 % goal. A pod
that is not CPU-bound with 8 clients (TorchServe's few workers) does better than that.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from e2e import Caller, build_models, pod_url, process_cpu, row

from sandbox.engine import Sandbox
from sandbox.settings import Settings


def measure(url: str, pids: dict[str, int], count: int) -> dict[str, float]:
    """CPU ms per request of each process, and wall ms per request, over ``count`` sequential calls."""
    call = Caller(url)
    for _ in range(50):
        call()
    procs = {name: psutil.Process(pid) for name, pid in pids.items()}
    before = {name: process_cpu(proc, children=name == "pod") for name, proc in procs.items()}
    client, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        call()
    result = {name: (process_cpu(proc, name == "pod") - before[name]) * 1000 / count for name, proc in procs.items()}
    result["client"] = (time.process_time() - client) * 1000 / count
    result["wall"] = (time.perf_counter() - wall) * 1000 / count
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--frameworks", nargs="+", default=["tf", "torch"])
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="gdc-gwcpu-"))
    os.environ.setdefault("KERAS_HOME", str(home / "keras"))
    sb = Sandbox(Settings(home=home / "sandbox", s3_port=0, gateway_port=0))
    try:
        sb.up()
        models = build_models(home / "models")
        images = {"tf": "tf2-cpu.2-18", "torch": "pytorch-cpu.2-4"}
        print(f"{'CPU ms per request':<52} {'client':>8} {'gateway':>8} {'pod':>8} {'wall':>8}")
        for framework in args.frameworks:
            uri = f"s3://models/cpu-{framework}/1"
            sb.upload(models[framework], uri, progress=False)
            sb.deploy(uri, images[framework], f"cpu-{framework}")
            base, pod_pid = pod_url(sb, f"cpu-{framework}")
            direct_url = base + ("/v1/models/default:predict" if framework == "tf" else "/predictions/model")
            gateway_url = f"{sb.running().gateway_url}/endpoints/default/cpu-{framework}/v1/model:predict"
            pids = {"gateway": sb.running().control.pid, "pod": pod_pid}
            costs = {}
            for what, url in (("direct", direct_url), ("gateway", gateway_url)):
                m = costs[what] = measure(url, pids, args.requests)
                row(f"{framework} {what}", f"{m['client']:8.3f} {m['gateway']:8.3f} {m['pod']:8.3f} {m['wall']:8.3f}")
            direct = costs["direct"]["client"] + costs["direct"]["pod"]
            bound = direct / (direct + costs["gateway"]["gateway"])
            row(f"  {framework}: 8-client ratio if all were CPU-bound", f"{bound:.0%}", "", "goal >= 90%")
    finally:
        sb.down()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
