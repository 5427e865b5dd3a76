"""End-to-end timings from one run: sandbox start, deploy-to-first-prediction, and gateway overhead.

    .venv/bin/python bench/e2e.py [--requests 300]

Starts a private sandbox in a temp folder on free loopback ports, builds tiny TF and PyTorch models,
and prints, for each framework, the median/p99 predict latency through the gateway next to the same
request sent straight to the model server (the baseline, measured in the same run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import requests

from sandbox.engine import Sandbox
from sandbox.settings import Settings


def timed_requests(session: requests.Session, url: str, body: bytes, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        response = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        samples.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return samples


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build_models(root: Path) -> dict[str, Path]:
    import keras
    import torch

    from sandbox.export import export_tensorflow, export_torch

    tf_dir = export_tensorflow(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), root / "tf")
    torch_dir = export_torch(torch.nn.Linear(4, 2), root / "torch", example_inputs=torch.zeros(1, 4)).parent
    return {"tf": tf_dir, "torch": torch_dir}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="gdc-bench-"))
    os.environ.setdefault("KERAS_HOME", str(home / "keras"))
    sb = Sandbox(Settings(home=home / "sandbox", s3_port=0, gateway_port=0))
    rows = []
    try:
        start = time.perf_counter()
        sb.up()
        up_s = time.perf_counter() - start
        models = build_models(home / "models")
        body = json.dumps({"instances": [[1.0, 2.0, 3.0, 4.0]]}).encode()
        for framework, image in (("tf", "tf2-cpu.2-18"), ("torch", "pytorch-cpu.2-4")):
            uri = f"s3://models/bench-{framework}/1"
            sb.upload(models[framework], uri, progress=False)
            start = time.perf_counter()
            deployment = sb.deploy(uri, image, f"bench-{framework}")
            status, _ = sb.predict(deployment.endpoint, [[1.0, 2.0, 3.0, 4.0]])
            first_s = time.perf_counter() - start
            assert status == 200
            pod = next(p for p in sb.pods() if p["deployedModel"] == deployment.deployed_model)
            direct_url = pod["url"] + ("/v1/models/default:predict" if framework == "tf" else "/predictions/model")
            session = requests.Session()
            timed_requests(session, deployment.predict_url, body, 20)  # warm-up
            timed_requests(session, direct_url, body, 20)
            via_gateway = timed_requests(session, deployment.predict_url, body, args.requests)
            direct = timed_requests(session, direct_url, body, args.requests)
            rows.append(
                (
                    framework,
                    first_s,
                    statistics.median(direct),
                    statistics.median(via_gateway),
                    p(direct, 0.99),
                    p(via_gateway, 0.99),
                )
            )
    finally:
        sb.down()
        shutil.rmtree(home, ignore_errors=True)
    print(f"sandbox up -> ready: {up_s:.2f} s")
    print(
        f"{'model':<7}{'deploy->1st pred':>18}{'direct p50':>12}{'gateway p50':>13}{'added p50':>11}"
        f"{'direct p99':>12}{'gateway p99':>13}"
    )
    for framework, first_s, d50, g50, d99, g99 in rows:
        print(
            f"{framework:<7}{first_s:>16.2f} s{d50:>10.2f}ms{g50:>11.2f}ms{g50 - d50:>9.2f}ms"
            f"{d99:>10.2f}ms{g99:>11.2f}ms"
        )


if __name__ == "__main__":
    main()
