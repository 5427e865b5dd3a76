"""Pod lifecycle timings: a killed pod noticed, `down` with N pods, `up` until N DeployedModels serve again.

    .venv/bin/python bench/lifecycle.py [--deployments 12]

Starts a private sandbox in a temp folder on free loopback ports, deploys one tiny TF model to N
endpoints, then measures `down` (how long, and what it says it stopped) and `up` followed by the
background restore (until every DeployedModel is Ready and every endpoint answers). The baseline
printed next to them is one deployment's own deploy-to-ready time from the same run: N times it is
what restoring the deployments one by one would take.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

from sandbox.engine import Sandbox
from sandbox.settings import Settings


def ready_count(sb: Sandbox) -> int:
    count = 0
    for dm in sb.get("DeployedModel"):
        status = dm.get("status") or {}
        reason = (status.get("primaryCondition") or {}).get("reason")
        count += reason == "Ready" and status.get("servingGeneration") == dm["metadata"]["generation"]
    return count


def wait_all_ready(sb: Sandbox, total: int, timeout: float) -> float:
    start = time.monotonic()
    while ready_count(sb) < total:
        if time.monotonic() - start > timeout:
            raise SystemExit(f"only {ready_count(sb)}/{total} DeployedModels ready after {timeout:.0f}s")
        time.sleep(0.2)
    return time.monotonic() - start


def time_to_notice_a_kill(sb: Sandbox) -> float:
    """Seconds from `kill -9` of a pod until its DeployedModel's condition stops saying Ready (-1: not measured,
    e.g. on a version without the pod list this asks for)."""
    pod = next((p for p in sb.pods() if p.get("state") == "Running"), None)
    if pod is None:
        return -1.0
    start = time.monotonic()
    os.kill(pod["pid"], signal.SIGKILL)
    while (sb.get("DeployedModel", pod["deployedModel"])[0]["status"]["primaryCondition"]["reason"]) == "Ready":
        if time.monotonic() - start > 60:
            return -1.0
        time.sleep(0.01)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deployments", type=int, default=12)
    args = parser.parse_args()
    n = args.deployments
    tmp = Path(tempfile.mkdtemp(prefix="gdcs-bench-life-"))
    sb = Sandbox(Settings(home=tmp / "home", s3_port=0, gateway_port=0))
    try:
        import keras

        from sandbox.export import export_tensorflow

        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        folder = export_tensorflow(model, tmp / "art")
        sb.up()
        sb.upload(folder, "s3://models/bench/1", progress=False)
        start = time.monotonic()
        sb.deploy("s3://models/bench/1", "tf2-cpu.2-18", "bench-0")
        one = time.monotonic() - start
        for i in range(1, n):
            sb.deploy("s3://models/bench/1", "tf2-cpu.2-18", f"bench-{i}", wait=False)
        wait_all_ready(sb, n, 600)
        notice_s = time_to_notice_a_kill(sb)
        wait_all_ready(sb, n, 600)
        pods = sum(1 for _ in sb.pods())
        start = time.monotonic()
        stopped = sb.down()
        down_s = time.monotonic() - start
        start = time.monotonic()
        sb.up()
        up_s = time.monotonic() - start
        restore_s = wait_all_ready(sb, n, 900) + up_s
        for i in range(n):
            status, _ = sb.predict(f"bench-{i}", [[1.0, 2.0, 3.0, 4.0]])
            assert status == 200, (i, status)
        print(f"deployments: {n}, pods: {pods}")
        print(f"baseline: one deploy to ready {one:.1f}s (x{n} one by one: {one * n:.1f}s)")
        if notice_s >= 0:
            print(f"kill -9 of a pod to its DeployedModel not Ready: {notice_s:.2f}s")
        print(f"down: {down_s:.1f}s, said it stopped: {', '.join(stopped)}")
        print(f"up: {up_s:.1f}s to return; all {n} DeployedModels Ready {restore_s:.1f}s after `up` began")
    finally:
        sb.down()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
