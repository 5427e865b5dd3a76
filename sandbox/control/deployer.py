"""Reconcile DeployedModels: fetch the artifact as the serving identity, check it, start pods, swap safely.

A rollout starts the new pods first and switches traffic only once they answer; if the new
version fails, the previous pods keep serving and the status says why. Nothing in the bucket is
ever modified.
"""

from __future__ import annotations

import random
import shutil
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sandbox.control.pods import Key, PodTable
from sandbox.control.resources import FORCE_ANNOTATION
from sandbox.control.store import ResourceStore, now_rfc3339
from sandbox.errors import DeployFailed, SandboxError
from sandbox.images import Image, resolve
from sandbox.runtimes.base import PodInfo, PodSpec
from sandbox.runtimes.forkserver import ForkServers
from sandbox.runtimes.registry import RUNTIMES
from sandbox.s3.client import Store
from sandbox.settings import BUCKET_VIEWER_ROLE, SERVING_IDENTITY, Settings
from sandbox.uri import ArtifactURI

READY = {"type": "DeployedModel", "status": "True", "reason": "Ready", "message": "DeployedModel is ready"}


def condition(status: str, reason: str, message: str) -> dict[str, str]:
    return {
        "type": "DeployedModel",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now_rfc3339(),
    }


def deployed_model_id(uid: str) -> str:
    """A numeric id, as Vertex gives deployed models, derived from the resource uid."""
    return str(int(uid.replace("-", "")[:15], 16))


class Deployer:
    """Turns DeployedModel resources into running pods."""

    def __init__(
        self,
        settings: Settings,
        store: ResourceStore,
        pods: PodTable,
        can_read_bucket: Callable[[str, str, str], bool],
        serving_store: Store,
        on_ready: Callable[[Key, dict[str, Any]], None] = lambda key, dm: None,
    ) -> None:
        self.on_ready = on_ready
        self.settings = settings
        self.store = store
        self.pods = pods
        self.can_read_bucket = can_read_bucket
        self.serving_store = serving_store
        self._locks: dict[Key, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="reconcile")
        self.forkservers = ForkServers(settings.log_dir / "forkservers", pods.spawn_record, pods.release)
        self._warm_up()

    def _warm_up(self) -> None:
        """Start the fork server of each image in ``settings.warm_images`` whose runtime is installed."""
        for name in self.settings.warm_image_names:
            try:
                image = resolve(name)
            except SandboxError as exc:
                print(f"warning: GDC_SANDBOX_WARM_IMAGES: {exc.message}", file=sys.stderr, flush=True)
                continue
            if image.native:
                RUNTIMES[image.framework].warm_up(self.forkservers, image)

    # -- queue ---------------------------------------------------------------------------------
    def enqueue(self, key: Key) -> None:
        """Queue a reconcile; a DeployedModel not serving its current generation is marked Deploying at once,
        so a caller polling status never reads a stale failure as the answer to its new request."""
        dm = self.store.get(key)
        if dm is not None:
            status = dict(dm.get("status") or {})
            generation = int(dm["metadata"]["generation"])
            if not (status.get("servingGeneration") == generation and self.pods.get(key)):
                status["observedGeneration"] = generation
                status["primaryCondition"] = condition("False", "Deploying", f"deploying generation {generation}")
                status["conditions"] = [status["primaryCondition"]]
                self._save_status(key, status)
        self._executor.submit(self._reconcile_safely, key)

    def _lock_for(self, key: Key) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _reconcile_safely(self, key: Key) -> None:
        with self._lock_for(key):
            try:
                self.reconcile(key)
            except Exception as exc:  # a bug here must show in status, not kill the worker
                self._set_failed(key, "InternalError", f"reconcile crashed: {type(exc).__name__}: {exc}")

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.forkservers.close()
        for key in list(self.pods.all()):
            self.pods.pop(key)
        # every pod taken out, and those still loading; one spawned after this is stopped by `gdc-sandbox down`
        self.pods.stop_loose()

    # -- reconcile -----------------------------------------------------------------------------
    def reconcile(self, key: Key) -> None:
        dm = self.store.get(key)
        if dm is None:
            self.pods.retire(self.pods.pop(key))
            return
        generation = int(dm["metadata"]["generation"])
        status = dict(dm.get("status") or {})
        live = [p for p in self.pods.get(key) if p.process.is_alive()]
        if self.pods.generation(key) == generation and live and len(live) == len(self.pods.get(key)):
            return
        status.update(
            observedGeneration=generation,
            deployedModelID=status.get("deployedModelID") or deployed_model_id(dm["metadata"]["uid"]),
            primaryCondition=condition("False", "Deploying", f"deploying generation {generation}"),
        )
        status.pop("diagnostics", None)
        self._save_status(key, status)
        try:
            pods = self._start_generation(key, dm)
        except SandboxError as exc:
            self._set_failed(key, exc.code.split(".", 1)[-1], exc.message, exc)
            return
        previous = self.pods.set(key, pods, generation)
        for pod in pods:
            self.pods.release(pod.name)
        self.pods.retire(previous)
        status = dict(self.store.get(key) or {}).get("status", status)
        status.update(
            primaryCondition={**READY, "lastTransitionTime": now_rfc3339()},
            servingGeneration=generation,
            servingArtifact=dm["spec"]["modelSpec"]["artifactLocation"],
            servingImage=resolve(dm["spec"]["modelSpec"]["modelContainerSpec"]["imageURI"]).name,
            replicas=[{"name": p.name, "pid": p.process.pid, "url": p.base_url} for p in pods],
        )
        status.pop("diagnostics", None)
        status.pop("failure", None)
        status["conditions"] = [status["primaryCondition"]]
        self._save_status(key, status)
        self.on_ready(key, dm)

    def _start_generation(self, key: Key, dm: dict[str, Any]) -> list[PodInfo]:
        _, namespace, name = key
        spec = dm["spec"]
        uri = ArtifactURI.parse(spec["modelSpec"]["artifactLocation"])
        image = resolve(spec["modelSpec"]["modelContainerSpec"]["imageURI"])
        if not image.native:
            raise DeployFailed(
                f"image {image.name} runs TensorFlow {image.version}, which has no build for this Python",
                code="deploy.ImageNotSupported",
                hint="use the Docker Compose sandbox (real tensorflow/serving image) for this image",
            )
        replicas = self._replicas(namespace, spec)
        if not self.can_read_bucket(namespace, SERVING_IDENTITY, uri.bucket):
            raise DeployFailed(
                f"{SERVING_IDENTITY} cannot read bucket {uri.bucket}: it lacks the role {BUCKET_VIEWER_ROLE}",
                code="deploy.PermissionDenied",
                hint=f"gdc-sandbox iam grant --project {namespace} --identity {SERVING_IDENTITY} "
                f"--role {BUCKET_VIEWER_ROLE} --bucket {uri.bucket}",
            )
        generation = int(dm["metadata"]["generation"])
        artifact_dir = self.settings.run_dir / "artifacts" / namespace / name / f"gen-{generation}"
        if artifact_dir.exists():
            shutil.rmtree(artifact_dir)
        self.serving_store.download(uri, artifact_dir)
        if dm["metadata"].get("annotations", {}).get(FORCE_ANNOTATION) != "true":
            self._preflight(artifact_dir, image)
        RUNTIMES[image.framework].prepare(image, lambda message: self._note_progress(key, generation, message))
        return self._start_pods(namespace, name, generation, image, artifact_dir, replicas)

    def _note_progress(self, key: Key, generation: int, message: str) -> None:
        """Show a step of a long preparation (creating the image's runtime) as the Deploying condition's message."""
        dm = self.store.get(key)
        if dm is None or int(dm["metadata"]["generation"]) != generation:
            return
        status = dict(dm.get("status") or {})
        status["primaryCondition"] = condition("False", "Deploying", message)
        status["conditions"] = [status["primaryCondition"]]
        self._save_status(key, status)

    def _replicas(self, namespace: str, spec: dict[str, Any]) -> int:
        ref = spec.get("resourcePoolRef")
        if not ref:
            return 1
        pool = self.store.get(("ResourcePool", ref.get("namespace") or namespace, ref["name"]))
        if pool is None:
            raise DeployFailed(
                f"ResourcePool {ref['name']} does not exist in namespace {ref.get('namespace') or namespace}",
                code="deploy.ResourcePoolNotFound",
                hint="apply the ResourcePool first, or fix spec.resourcePoolRef.name",
            )
        return int(pool["spec"]["dedicatedResources"]["autoscaling"]["minReplica"])

    def _preflight(self, artifact_dir: Path, image: Image) -> None:
        from sandbox.artifacts import check_artifact

        report = check_artifact(artifact_dir, image)
        if not report.ok:
            error = DeployFailed(
                "the artifact will not serve: "
                + "; ".join(f"{d.code}: {d.message}" for d in report.diagnostics if d.severity == "error"),
                code="deploy.ArtifactInvalid",
                hint="run `gdc-sandbox check` on the artifact; deploy with --force to watch the model server fail",
            )
            error.diagnostics = report.to_dict()["diagnostics"]  # type: ignore[attr-defined]
            raise error

    def _start_pods(
        self, namespace: str, name: str, generation: int, image: Image, artifact_dir: Path, replicas: int
    ) -> list[PodInfo]:
        runtime = RUNTIMES[image.framework]
        suffix = f"{random.getrandbits(24):06x}"

        def start_one(index: int) -> PodInfo:
            pod_name = f"{namespace}-{name}-g{generation}-{suffix}-{index}"
            pod = runtime(
                PodSpec(
                    name=pod_name,
                    image=image,
                    artifact_dir=artifact_dir,
                    pod_dir=self.settings.run_dir / "pods" / pod_name,
                    log_path=self.settings.log_dir / "pods" / f"{pod_name}.log",
                    host=self.settings.host,
                    spawn_record=self.pods.spawn_record(pod_name),
                    forkservers=self.forkservers,
                )
            )
            try:
                return pod.start(self.settings.deploy_timeout)
            except BaseException:
                self.pods.release(pod_name)  # pod.start stopped it
                raise

        with ThreadPoolExecutor(max_workers=replicas) as pool:
            futures = [pool.submit(start_one, i) for i in range(replicas)]
            results, errors = [], []
            for future in futures:
                try:
                    results.append(future.result())
                except SandboxError as exc:
                    errors.append(exc)
        if errors:
            self.pods.retire(results)
            raise errors[0]
        return results

    # -- status --------------------------------------------------------------------------------
    def _save_status(self, key: Key, status: dict[str, Any]) -> None:
        self.store.set_status(key, status)

    def _set_failed(self, key: Key, reason: str, message: str, exc: SandboxError | None = None) -> None:
        dm = self.store.get(key)
        if dm is None:
            return
        status = dict(dm.get("status") or {})
        serving = status.get("servingGeneration")
        if serving is not None and self.pods.get(key):
            message += f" (generation {serving} keeps serving)"
        status["primaryCondition"] = condition("False", reason, message)
        status["conditions"] = [status["primaryCondition"]]
        status["observedGeneration"] = int(dm["metadata"]["generation"])
        if exc is not None:
            status["failure"] = {"code": exc.code, "message": exc.message, "hint": exc.hint, "details": exc.details}
            if getattr(exc, "diagnostics", None):
                status["diagnostics"] = exc.diagnostics  # type: ignore[attr-defined]
        self._save_status(key, status)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
