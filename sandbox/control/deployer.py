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

from sandbox.control.conditions import READY_MESSAGE, READY_REASON, with_condition
from sandbox.control.container_args import plan
from sandbox.control.pods import Key, PodTable
from sandbox.control.resources import FORCE_ANNOTATION, pool_autoscaling, serving_uri
from sandbox.control.store import ResourceStore
from sandbox.errors import DeployFailed, SandboxError
from sandbox.images import Image, nearest_native, resolve
from sandbox.runtimes.base import PodInfo, PodSpec
from sandbox.runtimes.forkserver import ForkServers
from sandbox.runtimes.registry import RUNTIMES
from sandbox.s3.client import Store
from sandbox.settings import BUCKET_VIEWER_ROLE, SERVING_IDENTITY, Settings


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
        self.startup_seconds: dict[str, float] = {}
        """How long each pod took from start to answering: a new replica's cold start."""
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
                status = with_condition(status, key[2], generation, "Deploying", f"deploying generation {generation}")
                self._save_status(key, status)
        self._executor.submit(self._reconcile_safely, key)

    def lock_for(self, key: Key) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _reconcile_safely(self, key: Key) -> None:
        with self.lock_for(key):
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
        )
        status = with_condition(status, key[2], generation, "Deploying", f"deploying generation {generation}")
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
            servingGeneration=generation,
            servingArtifact=str(serving_uri(dm["spec"]["modelSpec"])),
            servingImage=resolve(dm["spec"]["modelSpec"]["modelContainerSpec"]["imageURI"]).name,
            **self.replica_facts(key),
        )
        status.pop("failure", None)  # diagnostics stay: the preflight's warnings on what now serves
        self._save_status(key, with_condition(status, key[2], generation, READY_REASON, READY_MESSAGE))
        self.on_ready(key, dm)

    def _start_generation(self, key: Key, dm: dict[str, Any]) -> list[PodInfo]:
        _, namespace, name = key
        spec = dm["spec"]
        uri = serving_uri(spec["modelSpec"])
        container = spec["modelSpec"]["modelContainerSpec"]
        image = resolve(container["imageURI"])
        if not image.native:
            near = nearest_native(image)
            raise DeployFailed(
                f"image {image.name} runs TensorFlow {image.version}, which has no build for this Python, "
                "so the sandbox cannot serve it",
                code="deploy.ImageNotSupported",
                hint=f"serve it on the nearest image the sandbox runs: deploy with --image {near.name} "
                f"(TensorFlow {near.version} loads SavedModels written by {image.version}); "
                f"`gdc-sandbox check --image {image.name} URI` still checks the ops against {image.name}",
            )
        replicas = self._replicas(namespace, spec)
        container_plan = plan(image, container.get("command", []), container.get("args", []))
        if container_plan.refusal:
            raise DeployFailed(
                f"the {image.name} model server refuses its args: {container_plan.refusal}",
                code="deploy.ContainerArgsInvalid",
                hint="fix spec.modelSpec.modelContainerSpec.args (`gdc-sandbox apply` warned about it)",
            )
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
            self._preflight(key, artifact_dir, image)
        RUNTIMES[image.framework].prepare(image, lambda message: self._note_progress(key, generation, message))
        return self.start_pods(key, generation, replicas)

    def _note_progress(self, key: Key, generation: int, message: str) -> None:
        """Show a step of a long preparation (creating the image's runtime) as the Deploying condition's message."""
        dm = self.store.get(key)
        if dm is None or int(dm["metadata"]["generation"]) != generation:
            return
        self._save_status(key, with_condition(dict(dm.get("status") or {}), key[2], generation, "Deploying", message))

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
        return pool_autoscaling(pool).minReplica

    def _preflight(self, key: Key, artifact_dir: Path, image: Image) -> None:
        """Refuse an artifact with checker errors; keep its warnings and notes in status.diagnostics."""
        from sandbox.artifacts import check_artifact

        report = check_artifact(artifact_dir, image)
        if report.ok:
            status = dict(dict(self.store.get(key) or {}).get("status") or {})
            status["diagnostics"] = report.to_dict()["diagnostics"]
            self._save_status(key, status)
        else:
            error = DeployFailed(
                "the artifact will not serve: "
                + "; ".join(f"{d.code}: {d.message}" for d in report.diagnostics if d.severity == "error"),
                code="deploy.ArtifactInvalid",
                hint="run `gdc-sandbox check` on the artifact; deploy with --force to watch the model server fail",
            )
            error.diagnostics = report.to_dict()["diagnostics"]  # type: ignore[attr-defined]
            raise error

    def start_pods(self, key: Key, generation: int, replicas: int) -> list[PodInfo]:
        """Start ``replicas`` pods of a DeployedModel's generation from its downloaded artifact; all or none.
        The pods are outside the table (held loose) until the caller adds them."""
        _, namespace, name = key
        dm = self.store.get(key)
        if dm is None:
            raise DeployFailed(f"DeployedModel {name} was deleted", code="deploy.Deleted")
        container = dm["spec"]["modelSpec"]["modelContainerSpec"]
        image = resolve(container["imageURI"])
        server_args = plan(image, container.get("command", []), container.get("args", [])).server_args
        artifact_dir = self.settings.run_dir / "artifacts" / namespace / name / f"gen-{generation}"
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
                    extra={"server_args": server_args},
                    forkservers=self.forkservers,
                )
            )
            started = time.monotonic()
            try:
                info = pod.start(self.settings.deploy_timeout)
                self.startup_seconds[pod_name] = round(time.monotonic() - started, 2)
                return info
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
    def record_replicas(self, key: Key, desired: int | None = None) -> None:
        """Write the pods serving a DeployedModel, and how many it should have, into its status."""
        facts = self.replica_facts(key, desired)
        self.store.update_status(key, lambda status: {**status, **facts})

    def replica_facts(self, key: Key, desired: int | None = None) -> dict[str, Any]:
        """``replicas`` (each with its cold start in ``startupSeconds``), ``currentReplicas``, ``desiredReplicas``."""
        pods = self.pods.get(key)
        seconds = self.startup_seconds
        return {
            "replicas": [
                {"name": p.name, "pid": p.process.pid, "url": p.base_url, "startupSeconds": seconds.get(p.name)}
                for p in pods
            ],
            "currentReplicas": len(pods),
            "desiredReplicas": desired if desired is not None else len(pods),
        }

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
        generation = int(dm["metadata"]["generation"])
        status = with_condition(status, key[2], generation, reason, message)
        status["observedGeneration"] = generation
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
