"""Start and stop real ``python -m sandbox.s3.server --data-dir`` processes for the persistence tests."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Process:
    """One S3 server process on loopback, persisting to ``data_dir``; logs go to ``log_path``."""

    def __init__(
        self, data_dir: Path, log_path: Path, persist: bool = True, keys: tuple[str, str] | None = None
    ) -> None:
        self.data_dir, self.log_path, self.persist, self.keys = data_dir, log_path, persist, keys
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> S3Process:
        argv = [sys.executable, "-m", "sandbox.s3.server", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.persist:
            argv += ["--data-dir", str(self.data_dir)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GDC_SANDBOX_")}
        if self.keys:
            argv.append("--require-keys")
            env.update(GDC_SANDBOX_ACCESS_KEY=self.keys[0], GDC_SANDBOX_SECRET_KEY=self.keys[1])
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"S3 server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1) as resp:
                    if resp.status < 500:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise TimeoutError(f"S3 server at {self.url} not ready after {timeout} s\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)
        except ProcessLookupError:
            pass

    def restart(self, sig: int) -> S3Process:
        self.stop(sig)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        return self.start()

    def client(self, keys: tuple[str, str] | None = None) -> Any:
        access, secret = keys or self.keys or ("testing", "testing")
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=access,
            aws_secret_access_key=secret,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def snapshot(s3: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Every bucket -> key -> what a client can observe: size, sha256, ETag, content type, user metadata."""
    state: dict[str, dict[str, dict[str, Any]]] = {}
    for bucket in sorted(b["Name"] for b in s3.list_buckets()["Buckets"]):
        objects: dict[str, dict[str, Any]] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                got = s3.get_object(Bucket=bucket, Key=item["Key"])
                digest = hashlib.sha256()
                for chunk in got["Body"].iter_chunks(1 << 20):
                    digest.update(chunk)
                objects[item["Key"]] = {
                    "size": item["Size"],
                    "list_etag": item["ETag"],
                    "etag": got["ETag"],
                    "length": got["ContentLength"],
                    "sha256": digest.hexdigest(),
                    "content_type": got["ContentType"],
                    "metadata": got["Metadata"],
                    "last_modified": got["LastModified"],
                }
        state[bucket] = objects
    return state
