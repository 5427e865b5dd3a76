"""A private Docker engine for the compose tests, started and stopped by them, never the system one.

``python -m tests.compose.engine -- COMMAND...`` starts Debian's ``dockerd`` with no bridge, no
iptables and no forwarding, with its data root, exec root, pidfile, trust key and socket all in one
temp folder; builds the stand-in images (:mod:`sandbox.standins`) into it; runs COMMAND with
``DOCKER_HOST`` and the ``GDC_SANDBOX_IMAGE_*`` variables pointing at them (and no pulls: there
is no registry here); then checks that COMMAND left no container or network, removes every
container, stops dockerd by its PID and deletes the folder. Containers use host networking only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCKERD_FLAGS = ("--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false")


@dataclass
class PrivateDockerd:
    """One dockerd owned by this process."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gdcs-dockerd-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.folder / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log(self) -> Path:
        return self.folder / "dockerd.log"

    def start(self, timeout: float = 60) -> PrivateDockerd:
        if shutil.which("dockerd") is None:
            raise RuntimeError("dockerd is not installed: apt-get install docker.io docker-compose debootstrap")
        config = self.folder / "daemon.json"
        config.write_text(json.dumps({"deprecated-key-path": str(self.folder / "key.json")}))
        argv = [
            "dockerd",
            *DOCKERD_FLAGS,
            f"--data-root={self.folder / 'data'}",
            f"--exec-root={self.folder / 'exec'}",
            f"--pidfile={self.folder / 'dockerd.pid'}",
            f"--config-file={config}",
            f"--host={self.host}",
            "--log-level=warn",
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.log.read_text()[-3000:]
                self.stop()
                raise RuntimeError(f"dockerd exited with {self.process.returncode}:\n{output}")
            if self.socket.exists() and _answers(self.host):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dockerd did not answer on {self.socket} within {timeout:.0f}s")

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.host, timeout=600)

    def leftovers(self) -> list[str]:
        """Containers, and networks other than Docker's built-in ``host`` and ``none``, that exist now."""
        client = self.client()
        found = [f"container {c.name} ({c.status})" for c in client.containers.list(all=True)]
        found += [f"network {n.name}" for n in client.networks.list() if n.name not in ("host", "none")]
        return found

    def stop(self) -> None:
        """Remove every container, stop dockerd by its PID, unmount what it left and delete the folder."""
        try:
            if self.process is not None and self.process.poll() is None:
                try:
                    for container in self.client().containers.list(all=True):
                        container.remove(force=True)
                except Exception as exc:  # still stop the daemon
                    print(f"could not remove containers: {exc}", file=sys.stderr)
                started = time.monotonic()
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
                print(f"dockerd (PID {self.process.pid}) stopped in {time.monotonic() - started:.0f}s", file=sys.stderr)
        finally:
            for line in reversed(Path("/proc/mounts").read_text().splitlines()):
                mount_point = line.split()[1]
                if mount_point.startswith(str(self.folder) + "/"):
                    subprocess.run(["umount", "-l", mount_point], check=False)
            started = time.monotonic()
            shutil.rmtree(self.folder, ignore_errors=True)
            print(f"removed {self.folder} in {time.monotonic() - started:.0f}s", file=sys.stderr)


def _answers(host: str) -> bool:
    import docker
    from docker.errors import DockerException

    try:
        return bool(docker.DockerClient(base_url=host, timeout=5).ping())
    except DockerException:
        return False


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: python -m tests.compose.engine -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    command = argv[argv.index("--") + 1 :]
    from sandbox.standins import build

    engine = PrivateDockerd()
    try:
        engine.start()
        print(f"private dockerd (PID {engine.process.pid if engine.process else '?'}) at {engine.host}", flush=True)
        variables = build(engine.client(), lambda text: print(text, flush=True))
        env = {**os.environ, **variables, "DOCKER_HOST": engine.host, "GDC_SANDBOX_IMAGE_PULL": "never"}
        code = subprocess.run(command, env=env, check=False).returncode
        leftovers = engine.leftovers()
        for leftover in leftovers:
            print(f"left behind by {' '.join(command)}: {leftover}", file=sys.stderr)
        return code or (1 if leftovers else 0)
    finally:
        engine.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
