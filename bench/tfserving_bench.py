"""Latency and throughput of the TF Serving-compatible server: REST and gRPC vs the same signature in-process.

Loopback only, bounded in count and time. Run:

    .venv/bin/python bench/tfserving_bench.py [--requests 400] [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc  # noqa: E402

from tests.tfserving.models import conv as save_conv  # noqa: E402


class Dense(tf.Module):
    """A 16 -> 32 -> 1 MLP, larger than the conformance tests' Dense so compute is visible."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.default_rng(0)
        self.w1 = tf.Variable(rng.normal(size=(16, 32)).astype(np.float32))
        self.w2 = tf.Variable(rng.normal(size=(32, 1)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 16], tf.float32, name="x")])
    def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": tf.matmul(tf.nn.relu(tf.matmul(x, self.w1)), self.w2)}


def measure(call: Callable[[], None], clients: int, total: int, seconds: float) -> tuple[int, float, float, float]:
    """Run ``total`` calls split over ``clients`` threads (or until ``seconds``); return n, p50, p99 (ms), req/s."""
    for _ in range(20):
        call()  # warm up
    lat: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(n: int) -> None:
        mine = []
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            t = time.perf_counter()
            call()
            mine.append(time.perf_counter() - t)
        with lock:
            lat.extend(mine)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(total // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return len(lat), statistics.median(lat) * 1e3, p99 * 1e3, len(lat) / wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    from sandbox.process import ManagedProcess, free_port, wait_until
    from sandbox.runtimes.tfserving import runner
    from sandbox.runtimes.tfserving.loader import load_servable

    tmp = Path(tempfile.mkdtemp(prefix="tfs-bench-"))
    inputs = {"dense": np.random.default_rng(1).normal(size=(1, 16)).astype(np.float32),
              "conv": np.random.default_rng(1).normal(size=(1, 28, 28, 1)).astype(np.float32)}
    dense = Dense()
    tf.saved_model.save(dense, str(tmp / "dense" / "1"), signatures={"serving_default": dense.serve})
    save_conv(tmp / "conv" / "1")  # the conformance tests' conv net
    cfg = tmp / "models.config"
    cfg.write_text("model_config_list {\n" + "".join(
        f"  config {{ name: '{n}' base_path: '{tmp / n}' model_platform: 'tensorflow' }}\n" for n in inputs) + "}\n")
    rest_port, grpc_port = free_port(), free_port()
    argv = [sys.executable, "-m", "sandbox.runtimes.tfserving", f"--port={grpc_port}",
            f"--rest_api_port={rest_port}", f"--model_config_file={cfg}"]
    proc = ManagedProcess.start("tfserving-bench", argv, tmp / "server.log", cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
    rows = []

    def conv_available() -> bool:
        try:
            c = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=5)
            c.request("GET", "/v1/models/conv")
            return c.getresponse().status == 200
        except OSError:
            return False

    try:
        if not wait_until(conv_available, timeout=60, alive=proc.is_alive):
            raise RuntimeError(proc.log_tail())
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for name, x in inputs.items():
            servable = load_servable(name, 1, str(tmp / name / "1"))
            sig = servable.signatures["serving_default"]
            alias = next(iter(sig.inputs))
            body = json.dumps({"instances": x.tolist()}).encode()
            req = predict_pb2.PredictRequest()
            req.model_spec.name = name
            req.inputs[alias].CopyFrom(tf.make_tensor_proto(x))

            def in_process(servable=servable, sig=sig, x=x, alias=alias) -> None:  # type: ignore[no-untyped-def]
                runner.run_signature(servable, sig, {alias: x})

            def rest(name=name, body=body) -> None:  # type: ignore[no-untyped-def]
                c = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=10)
                c.request("POST", f"/v1/models/{name}:predict", body, {"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                assert r.status == 200
                c.close()

            def grpc_call(req=req) -> None:  # type: ignore[no-untyped-def]
                stub.Predict(req, timeout=10)

            for transport, fn in (("in-process", in_process), ("REST", rest), ("gRPC", grpc_call)):
                for clients in (1, 8):
                    n, p50, p99, rps = measure(fn, clients, args.requests, args.seconds)
                    rows.append((name, transport, clients, n, p50, p99, rps))
            servable.close()
        channel.close()
    finally:
        proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'model':<6} {'transport':<11} {'clients':>7} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name, transport, clients, n, p50, p99, rps in rows:
        print(f"{name:<6} {transport:<11} {clients:>7} {n:>5} {p50:>8.3f} {p99:>8.3f} {rps:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
