"""Fixtures for the TF Serving-compatible server: models built in tmp dirs, servers as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_HOME", str(ROOT / ".sandbox" / "keras"))

pytestmark = pytest.mark.tfserving


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running ``python -m sandbox.runtimes.tfserving`` subprocess."""

    proc: subprocess.Popen[bytes]
    rest_port: int
    grpc_port: int
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send a request; return (status, parsed JSON or raw text)."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def start_server(args: list[str], log: Path, python: str = sys.executable, ready_model: str | None = None,
                 timeout: float = 90.0, env: dict[str, str] | None = None) -> Server:
    """Start the server on free ports and wait until REST answers (and ``ready_model`` is AVAILABLE).

    ``env`` adds to this process' environment."""
    rest, grpc_port = free_port(), free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    cmd = [python, "-m", "sandbox.runtimes.tfserving", f"--port={grpc_port}", f"--rest_api_port={rest}", *args]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True)
    server = Server(proc, rest, grpc_port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log_text()[-3000:]}")
        try:
            status, body = server.request("GET", f"/v1/models/{ready_model or '_probe_'}")
            if ready_model is None or (status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"):
                return server
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    server.stop()
    raise TimeoutError(f"server not ready in {timeout}s:\n{server.log_text()[-3000:]}")


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from . import models

    return models.build_zoo(tmp_path_factory.mktemp("zoo"))


def config_text(entries: dict[str, Path], extra: str = "") -> str:
    body = "".join(
        f"  config {{ name: '{n}' base_path: '{p}' model_platform: 'tensorflow' }}\n" for n, p in entries.items()
    )
    return "model_config_list {\n" + body + extra + "}\n"


@pytest.fixture(scope="session")
def zoo_server(zoo: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the whole zoo plus a 'versions' model with labels, via --model_config_file."""
    d = tmp_path_factory.mktemp("zoo_server")
    entries = {k: v for k, v in zoo.items() if k != "versions"}
    extra = (
        f"  config {{ name: 'versions' base_path: '{zoo['versions']}' model_platform: 'tensorflow'\n"
        "    model_version_policy { all {} }\n"
        "    version_labels { key: 'stable' value: 1 } version_labels { key: 'canary' value: 2 } }\n"
    )
    cfg = d / "models.config"
    cfg.write_text(config_text(entries, extra))
    server = start_server([f"--model_config_file={cfg}", "--file_system_poll_wait_seconds=60"], d / "server.log",
                          ready_model="dense")
    server.extra["config"] = cfg
    # every model has had its one load attempt once "dense" is up (the initial load is synchronous)
    yield server
    server.stop()
