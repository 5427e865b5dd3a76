"""Reconcile DeployedModels: fetch the artifact as the serving identity, check it, start pods, swap safely.

A rollout starts the new pods first and switches traffic only once they answer; if the new
version fails, the previous pods keep serving and the status says why. Nothing in the bucket is
ever modified. Every pod is watched: one that dies is taken out of traffic at once and restarted
with back-off from the staged copy of what it served (:mod:`sandbox.control.restarts`); one that
stops answering its health route is taken out of traffic until it answers, and killed and restarted
when it stays silent (:mod:`sandbox.control.probes`); after a restart of the control plane each
DeployedModel serves again what it served before (:mod:`sandbox.control.serving`).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sandbox.control.conditions import READY_MESSAGE, READY_REASON, with_condition
from sandbox.control.container_args import plan
from sandbox.control.pods import Key, PodTable
from sandbox.control.probes import BUSY, NOT_LIVE, READY, Change, ProbeSettings, ProbeState
from sandbox.control.probes import watch as watch_probes
from sandbox.control.resources import FORCE_ANNOTATION, pool_autoscaling, serving_uri
from sandbox.control.restarts import PodRestarts, RestartBook, Termination
from sandbox.control.serving import ServingRecord, ServingRecords
from sandbox.control.store import ResourceStore
from sandbox.errors import DeployFailed, SandboxError
from sandbox.images import Image, resolve
from sandbox.process import stop_group, wait_exit
from sandbox.runtimes.base import TERMINATION_GRACE, PodInfo, PodSpec
from sandbox.runtimes.forkserver import ForkServers
from sandbox.runtimes.registry import BACKENDS
from sandbox.s3.client import Store
from sandbox.settings import BUCKET_VIEWER_ROLE, SERVING_IDENTITY, Settings

RESTARTING, CRASH_LOOP, POD_NOT_READY = "PodRestarting", "CrashLoopBackOff", "PodNotReady"
TRANSIENT = ("Deploying", RESTARTING, CRASH_LOOP, POD_NOT_READY)
"""Reasons that describe the pods, not a verdict on the spec: a restart of the control plane deploys again."""
PROBE_LOG = logging.getLogger("sandbox.probes")


def deployed_model_id(uid: str) -> str:
    """A numeric id, as Vertex gives deployed models, derived from the resource uid."""
    return str(int(uid.replace("-", "")[:15], 16))


class Deployer:
    """Turns DeployedModel resources into running pods, and keeps them running."""

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
        self.serving = ServingRecords(settings.state_dir / "serving", settings.run_dir / "artifacts")
        self.restarts = RestartBook(settings.restart_backoff)
        self.probes = ProbeSettings.of(settings)
        self._liveness_kills: dict[tuple[str, int], str] = {}
        """(pod name, pid) -> the failed liveness probe the control plane killed it for (until its watcher reads it)."""
        self._probe_states: dict[str, ProbeState] = {}
        """Pod name -> its probes' state, while they run."""
        self._locks: dict[Key, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._stopping = threading.Event()
        self._shutdown_lock = threading.Lock()
        self._restore_lock = threading.Lock()
        self._restore: dict[str, Any] = {"total": 0, "done": 0, "failed": []}
        # Loading a model is CPU-bound (importing TensorFlow, starting a JVM): one reconcile per core.
        self._executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="reconcile")
        self.startup_seconds: dict[str, float] = {}
        """How long each pod took from start to answering: a new replica's cold start."""
        self.forkservers = ForkServers(
            settings.log_dir / "forkservers", pods.spawn_record, pods.release, run_dir=settings.run_dir / "warm"
        )
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
                BACKENDS[self.settings.backend][image.framework].warm_up(self.forkservers, image)

    # -- queue ---------------------------------------------------------------------------------
    def enqueue(self, key: Key) -> None:
        """Queue a reconcile; a DeployedModel not serving its current generation is marked Deploying at once,
        so a caller polling status never reads a stale failure as the answer to its new request."""
        dm = self.store.get(key)
        if dm is not None:
            generation = int(dm["metadata"]["generation"])
            if self.pods.generation(key) != generation:
                self._save_condition(key, "Deploying", f"deploying generation {generation}")
        self._submit(self._reconcile_safely, key)

    def _submit(self, task: Callable[..., None], *args: Any) -> None:
        if self._stopping.is_set():
            return
        try:
            self._executor.submit(task, *args)
        except RuntimeError:  # shut down meanwhile
            pass

    def lock_for(self, key: Key) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _reconcile_safely(self, key: Key) -> None:
        with self.lock_for(key):
            if self._stopping.is_set():
                return
            try:
                self.reconcile(key)
            except Exception as exc:  # a bug here must show in status, not kill the worker
                self._crashed(key, "reconcile", exc)

    def _crashed(self, key: Key, what: str, exc: Exception) -> None:
        traceback.print_exc()
        try:
            self.serving.prune(key)  # a copy staged for the generation that did not make it
            self._set_failed(key, "InternalError", f"{what} crashed: {type(exc).__name__}: {exc}")
        except Exception:  # the store itself is failing (disk): the log has both tracebacks
            traceback.print_exc()

    def shutdown(self) -> list[str]:
        """Stop reconciling and restarting, then stop every pod at once; returns the names of the pods that
        were running. A second call waits for the first and returns nothing."""
        with self._shutdown_lock:
            if self._stopping.is_set():
                return []
            self._stopping.set()
            self._executor.shutdown(wait=False, cancel_futures=True)
            self.forkservers.close()
            for key in list(self.pods.all()):
                self.pods.pop(key)
            # every pod taken out, and those still loading; one spawned after this is stopped by `gdc-sandbox down`
            return self.pods.stop_loose()

    # -- restore after a restart of the control plane ------------------------------------------
    def restore(self, keys: list[Key]) -> None:
        """Serve again, in the background, what each DeployedModel served before the control plane stopped."""
        with self._restore_lock:
            self._restore = {"total": len(keys), "done": 0, "failed": []}
        for key in keys:
            self._submit(self._restore_safely, key)

    def restore_progress(self) -> dict[str, Any]:
        with self._restore_lock:
            return {**self._restore, "failed": list(self._restore["failed"])}

    def _restore_safely(self, key: Key) -> None:
        serving = False
        with self.lock_for(key):
            try:
                if not self._stopping.is_set():
                    self._restore_one(key)
                    serving = self.pods.generation(key) is not None or self.store.get(key) is None
            except Exception as exc:
                self._crashed(key, "restore", exc)
        with self._restore_lock:
            self._restore["done"] += 1
            if not serving:
                self._restore["failed"].append(key[2])

    def _restore_one(self, key: Key) -> None:
        dm = self.store.get(key)
        if dm is None:
            return
        generation = int(dm["metadata"]["generation"])
        status = dm.get("status") or {}
        cond = status.get("primaryCondition") or {}
        # A spec whose last attempt failed is shown failed again, not retried (apply or deploy retries it).
        failed = status.get("observedGeneration") == generation and cond.get("reason") not in (
            *TRANSIENT,
            READY_REASON,
            None,
        )
        record = self.serving.load(key)
        fresh = {**status, "replicas": []}  # the pods listed there stopped with the previous control plane
        if record is not None and record.staged() and not failed:
            restoring = f"restoring generation {record.generation} after a restart"
            fresh = with_condition(fresh, key[2], generation, "Deploying", restoring)
        self._save_status(key, fresh)
        if record is not None and record.staged():
            try:
                pods = self._start_pods(key, record, record.replicas)
            except SandboxError as exc:
                self._set_failed(key, exc.code.split(".", 1)[-1], exc.message, exc)
                return
            self._commit(key, dm, record, pods, announce=False)
            if record.generation == generation or failed:
                return
        elif failed:
            return
        self.reconcile(key)  # never served, or its staged copy is gone: deploy the spec from the bucket

    # -- reconcile -----------------------------------------------------------------------------
    def reconcile(self, key: Key) -> None:
        dm = self.store.get(key)
        if dm is None:
            self.pods.retire(self.pods.pop(key))
            self.serving.delete(key)
            self.restarts.forget(key)
            return
        generation = int(dm["metadata"]["generation"])
        if self.pods.generation(key) == generation:
            return  # served; a pod that dies is restarted by its watcher
        status = dict(dm.get("status") or {})
        status.update(
            observedGeneration=generation,
            deployedModelID=status.get("deployedModelID") or deployed_model_id(dm["metadata"]["uid"]),
        )
        status = with_condition(status, key[2], generation, "Deploying", f"deploying generation {generation}")
        status.pop("diagnostics", None)
        self._save_status(key, status)
        try:
            record, pods = self._start_generation(key, dm)
        except SandboxError as exc:
            self.serving.prune(key)  # the copy staged for the failed generation
            self._set_failed(key, exc.code.split(".", 1)[-1], exc.message, exc)
            return
        self._commit(key, dm, record, pods, announce=True)

    def _commit(self, key: Key, dm: dict[str, Any], record: ServingRecord, pods: list[PodInfo], announce: bool) -> None:
        """Switch a DeployedModel to freshly started pods. Undone whole if any step fails, so that a crash
        leaves the previous generation serving, its record intact and none of the new pods running."""
        if self._stopping.is_set():
            self.pods.retire(pods)
            return
        previous_generation, previous_record = self.pods.generation(key), self.serving.load(key)
        previous = self.pods.set(key, pods, record.generation)
        try:
            self.serving.save(key, record)
            if announce:
                self.on_ready(key, dm)
            self.restarts.forget(key)
            for pod in pods:
                self.restarts.started(key, pod.name)
            self._save_serving_status(key, record)
        except BaseException:
            if previous_generation is None:
                undone = self.pods.pop(key)
            else:
                undone = self.pods.set(key, previous, previous_generation)
                for pod in previous:
                    self.pods.release(pod.name)
            self.pods.retire(undone)
            if previous_record is not None:
                self.serving.save(key, previous_record)
            else:
                self.serving.forget(key)
            self.serving.prune(key)
            raise
        for pod in pods:
            self.pods.release(pod.name)
            self._watch(key, pod, record.generation)
        self.pods.retire(previous)
        self.serving.prune(key)

    def _start_generation(self, key: Key, dm: dict[str, Any]) -> tuple[ServingRecord, list[PodInfo]]:
        _, namespace, _ = key
        spec = dm["spec"]
        uri = serving_uri(spec["modelSpec"])
        container = spec["modelSpec"]["modelContainerSpec"]
        image = resolve(container["imageURI"])
        refusal = BACKENDS[self.settings.backend][image.framework].refusal(image)
        if refusal is not None:
            raise refusal
        replicas = self._replicas(namespace, spec)
        if not self.can_read_bucket(namespace, SERVING_IDENTITY, uri.bucket):
            raise DeployFailed(
                f"{SERVING_IDENTITY} cannot read bucket {uri.bucket}: it lacks the role {BUCKET_VIEWER_ROLE}",
                code="deploy.PermissionDenied",
                hint=f"gdc-sandbox iam grant --project {namespace} --identity {SERVING_IDENTITY} "
                f"--role {BUCKET_VIEWER_ROLE} --bucket {uri.bucket}",
            )
        generation = int(dm["metadata"]["generation"])
        artifact_dir = self.serving.artifact_dir(key, generation)
        if artifact_dir.exists():
            shutil.rmtree(artifact_dir)
        self.serving_store.download(uri, artifact_dir)
        if dm["metadata"].get("annotations", {}).get(FORCE_ANNOTATION) != "true":
            self._preflight(key, artifact_dir, image)
        BACKENDS[self.settings.backend][image.framework].prepare(
            image, lambda message: self._note_progress(key, generation, message)
        )
        server_args = plan(image, container.get("command", []), container.get("args", [])).server_args
        record = ServingRecord(generation, image.name, str(uri), str(artifact_dir), replicas, list(server_args))
        return record, self._start_pods(key, record, replicas)

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
        """Start ``replicas`` more pods of the generation a DeployedModel serves (the autoscaler's call); all or
        none. The pods are outside the table (held loose) until the caller adds them."""
        record = self.serving.load(key)
        if record is None or record.generation != generation:
            raise DeployFailed(f"DeployedModel {key[2]} no longer serves generation {generation}", code="deploy.Moved")
        return self._start_pods(key, record, replicas)

    def _start_pods(self, key: Key, record: ServingRecord, replicas: int) -> list[PodInfo]:
        """Start ``replicas`` pods at once; all or none (the ones that started are stopped if one fails)."""
        suffix = f"{random.getrandbits(24):06x}"
        names = [f"{key[1]}-{key[2]}-g{record.generation}-{suffix}-{index}" for index in range(replicas)]
        with ThreadPoolExecutor(max_workers=replicas) as pool:
            futures = [pool.submit(self._start_pod, name, record) for name in names]
            results: list[PodInfo] = []
            errors: list[Exception] = []
            for future in futures:
                try:
                    results.append(future.result())
                except Exception as exc:  # a bug as much as a failed load: the others must not run on
                    errors.append(exc)
        if errors:
            self.pods.retire(results)
            raise errors[0]
        return results

    def _start_pod(self, pod_name: str, record: ServingRecord) -> PodInfo:
        """Start one model server and wait until it answers; it is held loose until committed or retired."""
        image = resolve(record.image)
        pod = BACKENDS[self.settings.backend][image.framework](
            PodSpec(
                name=pod_name,
                image=image,
                artifact_dir=Path(record.artifact_dir),
                pod_dir=self.settings.run_dir / "pods" / pod_name,
                log_path=self.settings.log_dir / "pods" / f"{pod_name}.log",
                host=self.settings.host,
                spawn_record=self.pods.spawn_record(pod_name),
                extra={"server_args": record.server_args},
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

    # -- pods that die -------------------------------------------------------------------------
    def add_replicas(self, key: Key, pods: list[PodInfo], generation: int) -> bool:
        """Put pods started by :meth:`start_pods` in the table, watched and probed like every other; False
        (nothing added) if the DeployedModel serves another generation now."""
        if not self.pods.add(key, pods, generation):
            return False
        for pod in pods:
            self.restarts.started(key, pod.name)
            self._watch(key, pod, generation)
        return True

    def _watch(self, key: Key, pod: PodInfo, generation: int) -> None:
        """Wait on the pod's process in a thread: its exit is noticed (and the process reaped) at once; and
        probe it in another (:mod:`sandbox.control.probes`)."""
        threading.Thread(
            target=self._await_exit, args=(key, pod, generation), name=f"watch-{pod.name}", daemon=True
        ).start()
        if self.probes.enabled:
            threading.Thread(target=self._probe, args=(key, pod), name=f"probe-{pod.name}", daemon=True).start()

    def liveness_kill(self, pod: PodInfo) -> str:
        """Why the control plane killed this pod's process for a failed liveness probe ("" if it did not)."""
        return self._liveness_kills.get((pod.name, pod.process.pid), "")

    def _await_exit(self, key: Key, pod: PodInfo, generation: int) -> None:
        code = wait_exit(pod.process)
        cause = self._liveness_kills.get((pod.name, pod.process.pid), "")
        if self._stopping.is_set() or not self.pods.died(key, pod):
            return  # stopped on purpose
        self.pods.retire([pod])  # already gone: this removes its scratch folder
        self._died(key, pod.name, generation, Termination.of_exit(pod.name, code, pod.process.log_path, cause))

    def _died(self, key: Key, pod_name: str, generation: int, termination: Termination) -> None:
        entry, delay = self.restarts.died(key, pod_name, termination)
        try:
            self._save_restarting_status(key, pod_name, entry, delay)
        finally:
            timer = threading.Timer(delay, self._submit, (self._restart_safely, key, pod_name, generation))
            timer.daemon = True
            timer.start()

    def _restart_safely(self, key: Key, pod_name: str, generation: int) -> None:
        with self.lock_for(key):
            record = self.serving.load(key)
            if (
                self._stopping.is_set()
                or self.pods.generation(key) != generation
                or record is None
                or record.generation != generation
            ):
                return  # rolled out, deleted or stopping meanwhile
            log = str(self.settings.log_dir / "pods" / f"{pod_name}.log")
            try:
                pod = self._start_pod(pod_name, record)
            except Exception as exc:
                if not isinstance(exc, SandboxError):
                    traceback.print_exc()
                message = exc.message if isinstance(exc, SandboxError) else f"{type(exc).__name__}: {exc}"
                details = exc.details if isinstance(exc, SandboxError) else ""
                self._died(
                    key, pod_name, generation, Termination(pod_name, f"restart failed: {message}", log, None, details)
                )
                return
            if not self.pods.refill(key, pod, generation):
                self.pods.retire([pod])
                return
            self.restarts.started(key, pod_name)
            self._watch(key, pod, generation)
            self._save_serving_status(key, record)

    # -- pods that stop answering -------------------------------------------------------------
    def _probe(self, key: Key, pod: PodInfo) -> None:
        state = self._probe_states[pod.name] = ProbeState(self.probes)
        try:
            watch_probes(
                pod, state, self._stopping, lambda: self.pods.holds(key, pod), lambda c: self._probed(key, pod, c)
            )
        finally:
            if self._probe_states.get(pod.name) is state:  # not yet replaced by the restarted pod's
                del self._probe_states[pod.name]

    def probe_counts(self) -> dict[str, dict[str, int]]:
        """Pod name -> how many of its probes were answered, failed, or met a silent but busy pod."""
        return {name: dict(state.counts) for name, state in list(self._probe_states.items())}

    def _probed(self, key: Key, pod: PodInfo, change: Change) -> None:
        """Act on a probe's verdict: out of traffic, back in, or killed (its watcher restarts it)."""
        where = f"pod {pod.name} of DeployedModel {key[1]}/{key[2]}"
        if change.kind == BUSY:
            PROBE_LOG.info(f"{where} {change.message}: it is working, not hung (not counted as a failure)")
            return
        if not self.pods.mark(key, pod, None if change.kind == READY else change.message):
            return  # taken out meanwhile (rolled out, scaled down, died)
        if change.kind == NOT_LIVE:
            PROBE_LOG.warning(f"{where}: {change.message}; killing it (it is restarted with back-off)")
            if len(self._liveness_kills) > 256:  # kept for the gateway's answers to requests still in flight
                self._liveness_kills.clear()
            self._liveness_kills[(pod.name, pod.process.pid)] = change.message
            stop_group(pod.process, TERMINATION_GRACE)  # SIGTERM, then SIGKILL: a stopped process ignores the first
            return
        if change.kind == READY:
            PROBE_LOG.info(f"{where} is back in traffic: {change.message}")
        else:
            PROBE_LOG.warning(f"{where} is out of traffic: {change.message}")
        record = self.serving.load(key)
        if record is not None:
            self._save_serving_status(key, record)

    # -- status --------------------------------------------------------------------------------
    def _save_status(self, key: Key, status: dict[str, Any]) -> None:
        self.store.set_status(key, status)

    def _save_condition(self, key: Key, reason: str, message: str) -> None:
        dm = self.store.get(key)
        if dm is None:
            return
        generation = int(dm["metadata"]["generation"])
        status = {**(dm.get("status") or {}), "observedGeneration": generation}
        self._save_status(key, with_condition(status, key[2], generation, reason, message))

    def record_replicas(self, key: Key, desired: int | None = None) -> None:
        """Write the pods serving a DeployedModel, and how many it should have, into its status."""
        facts = self.replica_facts(key, desired)
        self.store.update_status(key, lambda status: {**status, **facts})

    def replica_facts(self, key: Key, desired: int | None = None) -> dict[str, Any]:
        """``replicas`` (running, restarting or in CrashLoopBackOff, each running one with its cold start in
        ``startupSeconds``), ``currentReplicas``, ``desiredReplicas``, ``restartCount`` and ``lastTermination``."""
        facts = self._pod_status(key)
        running = [r for r in facts["replicas"] if r["state"] == "Running"]
        for row in running:
            row["startupSeconds"] = self.startup_seconds.get(row["name"])
        facts.update(
            currentReplicas=len(running), desiredReplicas=desired if desired is not None else len(facts["replicas"])
        )
        return facts

    def _pod_status(self, key: Key) -> dict[str, Any]:
        """``replicas`` (running, restarting or in CrashLoopBackOff), ``restartCount`` and ``lastTermination``."""
        history = self.restarts.of(key)
        not_ready = self.pods.not_ready(key)
        rows: list[dict[str, Any]] = [
            {
                "name": p.name,
                "state": "Running",
                "ready": p.name not in not_ready,
                **({"notReady": not_ready[p.name]} if p.name in not_ready else {}),
                "pid": p.process.pid,
                "url": p.base_url,
                "log": p.process.log_path,
                "restartCount": history[p.name].restarts if p.name in history else 0,
            }
            for p in self.pods.get(key)
        ]
        for name, entry in sorted(self.restarts.pending(key).items()):
            rows.append(
                {
                    "name": name,
                    "state": CRASH_LOOP if entry.crash_loop else "Restarting",
                    "restartCount": entry.restarts,
                    "log": entry.last.log if entry.last else "",
                }
            )
        ended = [e.last for e in history.values() if e.last is not None]
        status: dict[str, Any] = {"replicas": rows, "restartCount": sum(e.restarts for e in history.values())}
        if ended:
            status["lastTermination"] = max(ended, key=lambda t: t.finished_at).to_status()
        return status

    def _save_serving_status(self, key: Key, record: ServingRecord) -> None:
        """What serves now; Ready when it is the current generation and no pod is waiting for a restart."""
        dm = self.store.get(key)
        if dm is None:
            return
        generation = int(dm["metadata"]["generation"])
        status = dict(dm.get("status") or {})
        status.pop("lastTermination", None)
        status.update(
            servingGeneration=record.generation,
            servingArtifact=record.artifact_location,
            servingImage=record.image,
            deployedModelID=status.get("deployedModelID") or deployed_model_id(dm["metadata"]["uid"]),
            **self.replica_facts(key),
        )
        if self.restarts.pending(key):
            pass  # the restart status stays until every replica runs again
        elif record.generation == generation:
            status["observedGeneration"] = generation
            status.pop("failure", None)  # diagnostics stay: the preflight's warnings on what now serves
            not_ready = _not_ready_message(status["replicas"])
            if not_ready:
                status = with_condition(status, key[2], generation, POD_NOT_READY, not_ready)
            else:
                status = with_condition(status, key[2], generation, READY_REASON, READY_MESSAGE)
        elif status.get("failure"):  # a later spec failed: say so again, now that the served one runs
            failure = status["failure"]
            reason = failure.get("reason") or str(failure.get("code", "deploy.Failed")).split(".", 1)[-1]
            message = f"{failure['message']} (generation {record.generation} keeps serving)"
            status = with_condition(status, key[2], generation, reason, message)
        self._save_status(key, status)

    def _save_restarting_status(self, key: Key, pod_name: str, entry: PodRestarts, delay: float) -> None:
        dm = self.store.get(key)
        if dm is None or entry.last is None:
            return
        status = dict(dm.get("status") or {})
        status.update(self.replica_facts(key))
        ready = sum(1 for r in status["replicas"] if r["state"] == "Running" and r["ready"])
        last = entry.last
        verb = "keeps dying" if entry.crash_loop else "was killed" if last.by_control_plane else "died"
        message = (
            f"pod {pod_name} {verb}: {last.message}; restart {entry.restarts} in {delay:g}s; "
            f"{ready}/{len(status['replicas'])} replicas ready (traffic goes only to ready replicas); log {last.log}"
        )
        tail = last.log_tail.strip().splitlines()[-3:]
        if tail:
            message += "\nlast lines of its log:\n" + "\n".join(tail)
        cond = status.get("primaryCondition") or {}
        if cond.get("reason") != "Deploying" or cond.get("message", "").startswith("restoring"):
            reason = CRASH_LOOP if entry.crash_loop else RESTARTING
            status = with_condition(status, key[2], int(dm["metadata"]["generation"]), reason, message)
        self._save_status(key, status)

    def _set_failed(self, key: Key, reason: str, message: str, exc: SandboxError | None = None) -> None:
        dm = self.store.get(key)
        if dm is None:
            return
        status = dict(dm.get("status") or {})
        serving = self.pods.generation(key)
        full = message + (f" (generation {serving} keeps serving)" if serving is not None else "")
        generation = int(dm["metadata"]["generation"])
        status = with_condition(status, key[2], generation, reason, full)
        status["observedGeneration"] = generation
        status["failure"] = {"reason": reason, "code": f"deploy.{reason}", "message": message}
        if exc is not None:
            status["failure"].update(code=exc.code, hint=exc.hint, details=exc.details)
            if getattr(exc, "diagnostics", None):
                status["diagnostics"] = exc.diagnostics  # type: ignore[attr-defined]
        self._save_status(key, status)


def _not_ready_message(replicas: list[dict[str, Any]]) -> str:
    """Which running replicas their readiness probe took out of traffic, and why; empty when none."""
    out = [r for r in replicas if r["state"] == "Running" and not r["ready"]]
    if not out:
        return ""
    ready = sum(1 for r in replicas if r["state"] == "Running" and r["ready"])
    return (
        "; ".join(f"pod {r['name']} is not ready: {r['notReady']}" for r in out)
        + f"; {ready}/{len(replicas)} replicas ready (traffic goes only to ready replicas); log {out[0]['log']}"
    )
