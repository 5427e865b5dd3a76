"""``Sandbox``: the one engine behind the CLI and the pytest plugin.

>>> sb = Sandbox(Settings())                                              # doctest: +SKIP
>>> sb.up(); sb.upload(Path("export"), "s3://models/m/1")                 # doctest: +SKIP
>>> sb.deploy("s3://models/m/1", image="tf2-cpu.2-18", endpoint="ep")     # doctest: +SKIP
>>> sb.predict("ep", [[1.0, 2.0, 3.0, 4.0]])                              # doctest: +SKIP
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.errors import DeployFailed, InvalidURI, SandboxError, SandboxNotRunning
from sandbox.images import resolve

if TYPE_CHECKING:  # imported where used: a command loads only what it needs (boto3 only to talk to S3)
    from sandbox.artifacts.report import Report
    from sandbox.client import ControlPlaneClient
    from sandbox.outcomes import Deployment, Prediction
    from sandbox.s3.client import Store, UploadResult
    from sandbox.settings import Settings
    from sandbox.stack import Stack, StackState
    from sandbox.uri import ArtifactURI

ADMIN = "/sandbox/v1"


def created_by_deploy(endpoint: str, outcome: Deployment | SandboxError) -> list[tuple[str, str]]:
    """(kind, name) of what one :meth:`Sandbox.deploy` call created, whether it succeeded or failed."""
    from sandbox.outcomes import Deployment

    if isinstance(outcome, Deployment):
        names = [outcome.deployed_model, outcome.resource_pool]
    else:
        names = [getattr(outcome, "deployed_model", ""), getattr(outcome, "resource_pool", "")]
    kinds = ("Endpoint", "DeployedModel", "ResourcePool")
    return [(kind, name) for kind, name in zip(kinds, [endpoint, *names], strict=True) if name]


class Sandbox:
    """Everything a user does with the sandbox, in plain Python calls."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._client: ControlPlaneClient | None = None

    @property
    def settings(self) -> Settings:
        """The settings given, or read from ``GDC_SANDBOX_*`` on first use (`check DIR` never needs them)."""
        if self._settings is None:
            from sandbox.settings import Settings

            self._settings = Settings()
        return self._settings

    @cached_property
    def stack(self) -> Stack:
        from sandbox.stack import Stack

        return Stack(self.settings)

    # -- lifecycle -------------------------------------------------------------------------------
    def up(self) -> tuple[StackState, bool]:
        return self.stack.up()

    def down(self) -> list[str]:
        return self.stack.down()

    def running(self) -> StackState:
        state = self.stack.running()
        if state is None:
            raise SandboxNotRunning(str(self.settings.home))
        return state

    def health(self) -> dict[str, Any]:
        """The control plane's health answer: pid, gateway URL, whether prediction authorization is on."""
        return dict(self.client().call("GET", f"{ADMIN}/health"))

    def client(self) -> ControlPlaneClient:
        """A client of the running control plane, kept while its URL stays the same (keep-alive connections)."""
        from sandbox.client import ControlPlaneClient

        url = self.running().gateway_url.rstrip("/")
        if self._client is None or self._client.base_url != url:
            self._client = ControlPlaneClient(url)
        return self._client

    def store(self) -> Store:
        from sandbox.s3.client import Store

        return Store(self.running().s3_url, self.settings.access_key, self.settings.secret_key)

    # -- artifacts -------------------------------------------------------------------------------
    def upload(self, source: Path, uri: str, *, overwrite: bool = False, progress: bool = True) -> UploadResult:
        target = _artifact_uri(uri)
        return self.store().upload(source, target, overwrite=overwrite, progress=progress)

    def overwrite_warnings(self, uri: str) -> list[str]:
        """What `upload --overwrite` of ``uri`` does not change: each DeployedModel serving that version keeps its
        bytes; the warning gives the `deploy` command that rolls out the new ones."""
        from sandbox.control.resources import ATTACH_ANNOTATION, TRAFFIC_ANNOTATION

        wanted = str(_artifact_uri(uri))
        warnings = []
        for dm in self.get("DeployedModel"):
            status = dm.get("status") or {}
            if wanted not in (dm["spec"]["modelSpec"]["artifactLocation"], status.get("servingArtifact")):
                continue
            annotations = dm["metadata"].get("annotations") or {}
            command = f"gdc-sandbox deploy {wanted} --image {dm['spec']['modelSpec']['modelContainerSpec']['imageURI']}"
            if annotations.get(ATTACH_ANNOTATION):
                command += f" --endpoint {annotations[ATTACH_ANNOTATION]}"
            if annotations.get(TRAFFIC_ANNOTATION):
                command += f" --traffic {annotations[TRAFFIC_ANNOTATION]}"
            warnings.append(
                f"DeployedModel {dm['metadata']['name']} serves {wanted} and keeps serving the bytes it loaded, also "
                f"after a restart of its pods or of the sandbox; to serve the new bytes, deploy again: {command}"
            )
        return warnings

    def restore_progress(self) -> dict[str, Any]:
        """``{"total", "done", "failed"}`` of the DeployedModels a starting control plane serves again."""
        return dict(self.client().call("GET", f"{ADMIN}/health").get("restore") or {})

    def delete_version(self, uri: str) -> int:
        """Delete every object of the version folder ``uri``; returns how many were deleted."""
        return self.store().delete_artifact(_artifact_uri(uri))

    def list_objects(self, uri: str) -> list[dict[str, Any]]:
        """Objects under ``s3://BUCKET[/PREFIX]`` (or every bucket for ``s3://``)."""
        return self.store().list_prefix(uri)

    def make_bucket(self, uri: str) -> tuple[str, bool]:
        """Create the bucket of ``s3://BUCKET``; returns (bucket, False if it already existed)."""
        from sandbox.uri import split_bucket

        bucket, key = split_bucket(uri)
        if key.strip("/"):
            raise InvalidURI(f"{uri!r} names a path in a bucket; mb takes s3://BUCKET", hint="e.g. s3://my-models")
        return bucket, self.store().ensure_bucket(bucket)

    def check(self, target: str, image: str | None = None) -> Report:
        """Run the preflight checker on a local path or an ``s3://`` version folder."""
        from sandbox.artifacts import check_artifact

        img = resolve(image) if image else None
        if target.startswith("s3://"):
            uri = _artifact_uri(target)
            import tempfile

            with tempfile.TemporaryDirectory(prefix="gdc-check-") as tmp:
                self.store().download(uri, Path(tmp))
                return check_artifact(Path(tmp), img)
        return check_artifact(Path(target), img)

    # -- deploy ----------------------------------------------------------------------------------
    def deploy(
        self,
        uri: str,
        image: str,
        endpoint: str,
        *,
        namespace: str | None = None,
        force: bool = False,
        replicas: int = 1,
        traffic: int = 100,
        wait: bool = True,
        timeout: float | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> Deployment:
        _artifact_uri(uri)
        resolve(image)
        answer = self.client().call(
            "POST",
            f"{ADMIN}/deploy",
            {
                "uri": uri,
                "image": image,
                "endpoint": endpoint,
                "namespace": namespace,
                "force": force,
                "replicas": replicas,
                "traffic": traffic,
            },
        )
        ns, dm_name = answer["namespace"], answer["deployedModel"]
        if wait:
            try:
                self.wait_ready("DeployedModel", dm_name, ns, timeout or self.settings.deploy_timeout + 30, on_progress)
                self._wait_endpoint_serves(endpoint, ns, dm_name, timeout=30)
                self._check_answers(endpoint, ns, dm_name)
            except SandboxError as exc:
                exc.deployed_model = dm_name  # type: ignore[attr-defined]
                exc.resource_pool = answer.get("resourcePool", "")  # type: ignore[attr-defined]
                raise
        dm = self.get("DeployedModel", dm_name, ns)[0]
        ep = self.get("Endpoint", endpoint, ns)[0] if wait else {"status": {}}
        from sandbox.outcomes import Deployment

        return Deployment(
            deployed_model=dm_name,
            namespace=ns,
            endpoint=endpoint,
            deployed_model_id=dm.get("status", {}).get("deployedModelID", ""),
            predict_url=ep["status"].get("predictURL", ""),
            endpoint_url=ep["status"].get("endpointURL", ""),
            warnings=answer.get("imageWarnings", []),
            replaced=answer.get("replacing", []),
            traffic=[
                {"deployedModel": d["deployedModel"], "trafficPercentage": d["trafficPercentage"]}
                for d in ep["status"].get("destinations", [])
            ],
            diagnostics=list(dm.get("status", {}).get("diagnostics") or []),
            resource_pool=answer.get("resourcePool", ""),
        )

    def _check_answers(self, endpoint: str, namespace: str, dm_name: str) -> None:
        """Ready is not enough: a pod of the new DeployedModel must answer its health check right now."""
        from sandbox.client import RemoteError

        try:
            probe = self.client().call("GET", f"/endpoints/{namespace}/{endpoint}/health")
        except RemoteError as exc:
            probe = exc.body
        pods: list[dict[str, Any]] = next(
            (d["pods"] for d in probe.get("destinations", []) if d["deployedModel"] == dm_name), []
        )
        if not any(p["answers"] for p in pods):
            raise DeployFailed(
                f"DeployedModel {dm_name} is marked ready but none of its pods answers its health check",
                code="deploy.not-answering",
                hint=f"`gdc-sandbox get deployedmodel {dm_name} -o yaml` shows its pods; their logs are in "
                f"{self.settings.log_dir / 'pods'}",
            )

    def wait_ready(
        self, kind: str, name: str, namespace: str, timeout: float, on_progress: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Poll a DeployedModel until its current generation is Ready; raise DeployFailed with its reason."""
        deadline = time.monotonic() + timeout
        last_message = ""
        while True:
            item = self.get(kind, name, namespace)[0]
            status = item.get("status") or {}
            cond = status.get("primaryCondition") or {}
            current = status.get("observedGeneration") == item["metadata"].get("generation")
            if (
                current
                and cond.get("reason") == "Ready"
                and status.get("servingGeneration") == status.get("observedGeneration")
            ):
                return item
            if current and cond.get("reason") not in ("Ready", "Deploying", "PodRestarting", "PodNotReady", None):
                failure = status.get("failure") or {}
                error = DeployFailed(
                    f"DeployedModel {name} failed: {cond.get('reason')}: {cond.get('message')}",
                    code=failure.get("code") or f"deploy.{cond.get('reason')}",
                    hint=failure.get("hint", ""),
                    details=failure.get("details", ""),
                )
                error.diagnostics = status.get("diagnostics")  # type: ignore[attr-defined]
                raise error
            if cond.get("message") and cond.get("message") != last_message:
                last_message = cond["message"]
                deadline = max(deadline, time.monotonic() + timeout)  # still moving (e.g. creating a runtime)
                if on_progress:
                    on_progress(last_message)
            if time.monotonic() > deadline:
                raise DeployFailed(
                    f"DeployedModel {name} was not ready after {timeout:.0f}s "
                    f"(last condition: {cond.get('reason')}: {cond.get('message')})",
                    code="deploy.timeout",
                    hint="`gdc-sandbox status` and the pod log show progress",
                )
            time.sleep(0.05)

    def wait_for(
        self, kind: str, name: str, namespace: str | None, test: Callable[[dict[str, Any] | None], bool], timeout: float
    ) -> dict[str, Any] | None:
        """Poll a resource until ``test(resource or None)`` holds; raise ``wait.timeout`` naming its last state."""
        from sandbox.client import RemoteError

        deadline = time.monotonic() + timeout
        while True:
            try:
                item: dict[str, Any] | None = self.get(kind, name, namespace)[0]
            except RemoteError as exc:
                if exc.http_status != 404:
                    raise
                item = None
            if test(item):
                return item
            if time.monotonic() >= deadline:
                cond = ((item or {}).get("status") or {}).get("primaryCondition") or {}
                last = f" (last: {cond.get('reason')}: {cond.get('message')})" if cond else ""
                raise SandboxError(
                    f"timed out waiting for the condition on {kind.lower()}s/{name}{last}",
                    code="wait.timeout",
                    hint=f"`gdc-sandbox get {kind.lower()} {name} -o yaml` shows its status",
                )
            time.sleep(0.2)

    def _wait_endpoint_serves(self, endpoint: str, namespace: str, dm_name: str, timeout: float) -> None:
        from sandbox.client import RemoteError

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ep = self.get("Endpoint", endpoint, namespace)[0]
                dests = ep["status"].get("destinations", [])
                if any(d["deployedModel"] == dm_name and d["serving"] for d in dests):
                    return
            except RemoteError:
                pass
            time.sleep(0.05)
        raise DeployFailed(
            f"endpoint {endpoint} did not switch to {dm_name} within {timeout:.0f}s",
            code="deploy.endpoint-timeout",
            hint=f"`gdc-sandbox get endpoint {endpoint} -o yaml` shows its destinations and why it waits",
        )

    # -- resources -------------------------------------------------------------------------------
    def apply(self, documents: list[Any], namespace: str | None = None) -> list[dict[str, Any]]:
        return list(
            self.client().call("POST", f"{ADMIN}/apply", {"documents": documents, "namespace": namespace})["applied"]
        )

    def get(self, kind: str, name: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        client = self.client()
        if name:
            return [client.call("GET", f"{ADMIN}/resources/{kind}/{namespace or self.settings.project}/{name}")]
        params = {"namespace": namespace} if namespace else None
        return list(client.call("GET", f"{ADMIN}/resources/{kind}", params=params)["items"])

    def delete(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        """``{"deleted": ..., "warnings": [...]}``: a warning for each Endpoint that still routes to it."""
        ns = namespace or self.settings.project
        return dict(self.client().call("DELETE", f"{ADMIN}/resources/{kind}/{ns}/{name}"))

    def delete_quietly(self, resources: list[tuple[str, str]]) -> None:
        """Delete each (kind, name) in order, skipping what is already gone (cleaning up after a run)."""
        for kind, name in resources:
            try:
                self.delete(kind, name)
            except SandboxError:
                pass

    def pods(self) -> list[dict[str, Any]]:
        return list(self.client().call("GET", f"{ADMIN}/pods")["pods"])

    # -- IAM -------------------------------------------------------------------------------------
    def iam(self, action: str, **binding: Any) -> dict[str, Any]:
        client = self.client()
        if action == "list":
            return dict(client.call("GET", f"{ADMIN}/iam", params={k: v for k, v in binding.items() if v}))
        method, path = {"grant": ("POST", "/iam"), "revoke": ("DELETE", "/iam"), "token": ("POST", "/tokens")}[action]
        return dict(client.call(method, f"{ADMIN}{path}", binding))

    # -- predict ---------------------------------------------------------------------------------
    def predict(
        self,
        endpoint: str,
        instances: list[Any] | None = None,
        *,
        body: bytes | None = None,
        namespace: str | None = None,
        raw: bool = False,
        token: str | None = None,
    ) -> tuple[int, Any]:
        """POST to the endpoint's predict route; returns (HTTP status, parsed JSON body)."""
        answer = self.prediction(endpoint, instances, body=body, namespace=namespace, raw=raw, token=token)
        return answer.status, answer.body

    def prediction(
        self,
        endpoint: str,
        instances: list[Any] | None = None,
        *,
        body: bytes | None = None,
        namespace: str | None = None,
        raw: bool = False,
        token: str | None = None,
    ) -> Prediction:
        """Like :meth:`predict`, with the gateway's warnings."""
        ns = namespace or self.settings.project
        verb = "rawPredict" if raw else "predict"
        import json

        payload = body if body is not None else json.dumps({"instances": instances}).encode()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client().post_raw(f"/endpoints/{ns}/{endpoint}/v1/model:{verb}", payload, headers=headers)
        warnings = _WARNING.findall(response.headers.get("warning", ""))
        try:
            parsed = response.json()
        except ValueError:
            parsed = {"raw": response.text}
        from sandbox.outcomes import Prediction

        return Prediction(response.status_code, parsed, [re.sub(r"\\(.)", r"\1", w) for w in warnings])


def _artifact_uri(uri: str) -> ArtifactURI:
    """The parsed version-folder URI (:mod:`sandbox.uri` loads on first use: `check DIR` never needs it)."""
    from sandbox.uri import ArtifactURI

    return ArtifactURI.parse(uri)


_WARNING = re.compile(r'299 \S+ "((?:[^"\\]|\\.)*)"')
"""One ``Warning: 299 AGENT "text"`` value (RFC 7234 form, as the Kubernetes API server sends them)."""


__all__ = ["Sandbox", "SandboxError", "created_by_deploy"]
