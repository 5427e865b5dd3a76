"""Up / down / status of the native sandbox: the S3 server and the control plane (which owns the model pods)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sandbox.client import http_call
from sandbox.process import ManagedProcess, ProcessRecord, claim_port, stop_group, wait_healthy
from sandbox.settings import Settings

if TYPE_CHECKING:
    from sandbox.compose import ContainerRow


class StackBackend(Protocol):
    """What differs between backends in the stack: how the S3 endpoint runs, and what may outlive it."""

    s3_health_path: str

    def s3_launch(self, port: int) -> tuple[list[str], dict[str, str]]:
        """The S3 process's command line and extra environment."""

    def remove_leftovers(self) -> None:
        """After the processes are stopped: remove what they may have left (containers)."""

    def containers(self) -> list[ContainerRow] | None:
        """The backend's containers, for `status` (None: this backend has none)."""


class NativeBackend:
    """Local processes: moto on loopback for S3, persisted to the home's ``s3`` folder."""

    s3_health_path = "/moto-api/"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def s3_launch(self, port: int) -> tuple[list[str], dict[str, str]]:
        host = self.settings.host
        argv = [sys.executable, "-m", "sandbox.s3.server", "--host", host, "--port", str(port), "--require-keys"]
        return [*argv, "--data-dir", str(self.settings.s3_data_dir)], {}

    def remove_leftovers(self) -> None:
        """Nothing outlives the native processes."""

    def containers(self) -> list[ContainerRow] | None:
        return None


@dataclass
class StackState:
    """What `up` wrote: ports and the two processes it started."""

    s3_url: str
    gateway_url: str
    s3: ProcessRecord
    control: ProcessRecord

    def save(self, path: Path) -> None:
        data = asdict(self)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> StackState | None:
        try:
            data = json.loads(path.read_text())
            return cls(
                data["s3_url"], data["gateway_url"], ProcessRecord(**data["s3"]), ProcessRecord(**data["control"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


@dataclass
class ComponentStatus:
    name: str
    state: str
    """running, crashed, stopped or unhealthy."""
    url: str
    pid: int | None
    log: str


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        return http_call("GET", url, timeout).status_code < 500
    except OSError:
        return False


class Stack:
    """The processes of one sandbox home."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state_path = settings.state_dir / "stack.json"

    @property
    def credentials_path(self) -> Path:
        return self.settings.home / "credentials.env"

    def state(self) -> StackState | None:
        return StackState.load(self.state_path)

    def running(self) -> StackState | None:
        """The recorded stack if both processes are alive and the control plane answers."""
        state = self.state()
        if (
            state
            and state.s3.is_alive()
            and state.control.is_alive()
            and _http_ok(state.gateway_url + "/sandbox/v1/health")
        ):
            return state
        return None

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name, value in self.settings.model_dump().items():
            env[f"GDC_SANDBOX_{name.upper()}"] = str(value)
        env["GDC_SANDBOX_HOME"] = str(self.settings.home.resolve())
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def up(self) -> tuple[StackState, bool]:
        """Start what is not running; returns (state, started_now). Idempotent."""
        current = self.running()
        if current is not None:
            return current, False
        self.settings.ensure_dirs()
        self.down()  # clear a half-dead previous stack (only processes we recorded)
        self._backend_path.write_text(self.settings.backend)  # `down` and `status` act on what `up` started
        host = self.settings.host
        env = self.child_env()
        s3_port = claim_port(self.settings.s3_port, host, "S3 server", "GDC_SANDBOX_S3_PORT")
        gw_port = claim_port(self.settings.gateway_port, host, "control plane", "GDC_SANDBOX_GATEWAY_PORT")
        while gw_port == s3_port and not self.settings.gateway_port:  # two free-port picks can coincide
            gw_port = claim_port(0, host, "control plane", "GDC_SANDBOX_GATEWAY_PORT")
        s3_url = f"http://{host}:{s3_port}"
        backend = self.backend
        argv, s3_env = backend.s3_launch(s3_port)
        s3 = ManagedProcess.start("s3", argv, self.settings.log_dir / "s3.log", env={**env, **s3_env})
        try:
            health = s3_url + backend.s3_health_path
            wait_healthy(s3, "S3 server", s3_url, lambda: _http_ok(health), self.settings.startup_timeout)
            gateway_url = f"http://{host}:{gw_port}"
            argv = [sys.executable, "-m", "sandbox.control", "--port", str(gw_port), "--s3-endpoint", s3_url]
            control = ManagedProcess.start("control-plane", argv, self.settings.log_dir / "control-plane.log", env=env)
            try:
                wait_healthy(
                    control,
                    "control plane",
                    gateway_url,
                    lambda: _http_ok(gateway_url + "/sandbox/v1/health"),
                    self.settings.startup_timeout,
                )
            except BaseException:
                control.stop()
                raise
        except BaseException:
            s3.stop()
            raise
        state = StackState(s3_url, gateway_url, s3.record, control.record)
        state.save(self.state_path)
        self._write_credentials(s3_url)
        return state, True

    @property
    def _backend_path(self) -> Path:
        return self.settings.state_dir / "backend"

    @property
    def backend(self) -> StackBackend:
        """The backend of the recorded stack (what `up` started), else the configured one."""
        try:
            name = self._backend_path.read_text().strip()
        except OSError:
            name = self.settings.backend
        if name == "compose":
            from sandbox.compose import ComposeBackend

            return ComposeBackend(self.settings)
        return NativeBackend(self.settings)

    def _write_credentials(self, s3_url: str) -> None:
        self.credentials_path.write_text(
            "# source this file to use aws/boto3 against the sandbox's S3 endpoint\n"
            f"export AWS_ACCESS_KEY_ID={self.settings.access_key}\n"
            f"export AWS_SECRET_ACCESS_KEY={self.settings.secret_key}\n"
            "export AWS_DEFAULT_REGION=us-east-1\n"
            f"export AWS_ENDPOINT_URL={s3_url}\n"
            f"export AWS_ENDPOINT_URL_S3={s3_url}\n"
        )

    def down(self) -> list[str]:
        """Stop the pods (all at once, by the control plane), the control plane and the S3 server; returns what
        was stopped: ``control-plane``, ``pod/NAME`` for each model-server pod, ``s3``."""
        state = self.state()
        stopped: list[str] = []
        if state is not None:
            if state.control.is_alive():
                pods: list[str] = []
                try:
                    answer = http_call("POST", state.gateway_url + "/sandbox/v1/shutdown", timeout=60)
                    pods = list(answer.json().get("stopped", []))
                except (OSError, ValueError):
                    pass  # it does not answer: its pods are stopped from their records below
                stop_group(state.control)
                stopped += ["control-plane", *(f"pod/{name}" for name in pods)]
            if state.s3.is_alive():
                stop_group(state.s3)
                stopped.append("s3")
        stopped += self._stop_orphan_pods()
        self.backend.remove_leftovers()
        self.state_path.unlink(missing_ok=True)
        self._backend_path.unlink(missing_ok=True)
        return stopped

    def _stop_orphan_pods(self) -> list[str]:
        from sandbox.control.pods import PodTable
        from sandbox.runtimes.forkserver import is_standby

        pods_dir = self.settings.state_dir / "pods"
        if not pods_dir.exists():
            return []
        stopped = PodTable(pods_dir).stop_orphans()
        return [("" if is_standby(name) else "pod/") + f"{name} (orphaned)" for name in stopped]

    def status(self) -> list[ComponentStatus]:
        state = self.state()
        if state is None:
            return []
        result = []
        for name, record, url, health in (
            ("s3", state.s3, state.s3_url, state.s3_url + self.backend.s3_health_path),
            ("control-plane", state.control, state.gateway_url, state.gateway_url + "/sandbox/v1/health"),
        ):
            if not record.is_alive():
                condition = "crashed"
            else:
                condition = "running" if _http_ok(health) else "unhealthy"
            result.append(ComponentStatus(name, condition, url, record.pid, record.log_path))
        return result

    def warm_processes(self) -> list[ComponentStatus]:
        """The warm processes kept for the next deploys (TF fork servers, idle TorchServes): not pods."""
        from sandbox.runtimes.forkserver import is_standby

        spawning = self.settings.state_dir / "pods" / "spawning"
        records = (ProcessRecord.load(path) for path in sorted(spawning.glob("*.json")))
        return [
            ComponentStatus(r.name, "warm", "-", r.pid, r.log_path)
            for r in records
            if r is not None and is_standby(r.name) and r.is_alive()
        ]

    def pods(self) -> list[dict[str, Any]]:
        state = self.running()
        if state is None:
            return []
        try:
            return list(http_call("GET", state.gateway_url + "/sandbox/v1/pods").json().get("pods", []))
        except (OSError, ValueError):
            return []
