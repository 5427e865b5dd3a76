"""The control plane engine: apply/get/delete resources, the deploy shorthand, endpoint views and routing."""

from __future__ import annotations

import hashlib
import random
from typing import Any

from sandbox.control.autoscaler import Autoscaler
from sandbox.control.conditions import normalised
from sandbox.control.deployer import Deployer
from sandbox.control.iam import IAM, default_bindings
from sandbox.control.pods import Key, PodTable
from sandbox.control.resources import (
    ATTACH_ANNOTATION,
    DIGEST_ANNOTATION,
    FORCE_ANNOTATION,
    TRAFFIC_ANNOTATION,
    advisories,
    endpoint_path_parts,
    validate,
)
from sandbox.control.restarts import tail_of
from sandbox.control.store import ResourceStore
from sandbox.errors import NotFound, SandboxError, UsageError
from sandbox.images import resolve
from sandbox.kinds import API_VERSION_OF, canonical_kind
from sandbox.process import is_stopped, stopped_note
from sandbox.runtimes.base import PodInfo, health_check
from sandbox.s3.client import Store
from sandbox.settings import Settings
from sandbox.uri import ArtifactURI

PREDICTION_DOMAIN = "prediction.sandbox.localhost"
"""Endpoints' ``endpointFQDN`` is ``ENDPOINT.PROJECT.`` + this; the gateway routes ``/v1/model:predict`` by it."""
ENDPOINT_READY = {"type": "EndpointReady", "status": "True", "reason": "ResourceReady", "message": "Endpoint Ready"}


class Controller:
    """One per sandbox; owns the resource store, IAM, the deployer and the pods it starts."""

    def __init__(self, settings: Settings, s3_endpoint: str, gateway_url: str) -> None:
        self.settings = settings
        self.gateway_url = gateway_url
        self.store = ResourceStore(settings.state_dir / "resources")
        first_start = not (settings.state_dir / "iam.json").exists()
        self.s3 = Store(s3_endpoint, settings.access_key, settings.secret_key)
        self.s3.ensure_bucket(settings.bucket)
        self.iam = IAM(settings.state_dir / "iam.json", self.s3.bucket_exists)
        if first_start:
            default_bindings(self.iam, settings.project, settings.bucket)
        self.pods = PodTable(settings.state_dir / "pods")
        self.pods.stop_orphans()
        self.deployer = Deployer(
            settings, self.store, self.pods, self.iam.can_read_bucket, self.s3, on_ready=self._on_ready
        )
        self.deployer.restore(list(self.store.keys("DeployedModel")))
        self.autoscaler = Autoscaler(
            self.store, self.pods, self.deployer, settings.autoscale_interval, settings.scale_down_delay
        )
        self.autoscaler.start()

    def shutdown(self) -> list[str]:
        """Stop the autoscaler and every pod (at once); returns the pods' names."""
        self.autoscaler.stop()
        return self.deployer.shutdown()

    # -- resources -----------------------------------------------------------------------------
    def apply(self, documents: list[Any], namespace: str | None = None) -> list[dict[str, Any]]:
        """Validate every document first, reporting every problem of every document; apply none if any is
        invalid. Each result says ``created``, ``configured`` or ``unchanged``, with warnings."""
        ns = namespace or self.settings.project
        if not documents:
            raise UsageError("no resources to apply", code="resource.empty", hint="the file holds no YAML documents")
        validated, problems = [], []
        for i, doc in enumerate(documents):
            try:
                validated.append(validate(doc, f"document {i + 1}", ns))
            except UsageError as exc:
                problems.append(exc)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise UsageError(
                f"{len(problems)} of {len(documents)} documents are invalid",
                code="resource.invalid",
                details="\n".join(f"{p.message}\n{p.details}".rstrip() for p in problems),
                hint="fix the fields named above; nothing was applied",
            )
        results = []
        for resource in validated:
            stored, changed = self.store.apply(resource)
            key = _key(stored)
            if stored["kind"] == "DeployedModel" and (changed or not self._serving_current(stored)):
                self.deployer.enqueue(key)
            elif stored["kind"] == "ResourcePool" and changed:
                for dm in self._deployed_models_using(key):
                    self.deployer.enqueue(_key(dm))
            created = changed and stored["metadata"]["generation"] == 1
            results.append(
                {
                    "kind": stored["kind"],
                    "name": stored["metadata"]["name"],
                    "namespace": stored["metadata"]["namespace"],
                    "changed": changed,
                    "action": "created" if created else "configured" if changed else "unchanged",
                    "warnings": advisories(resource),
                }
            )
        return results

    def _serving_current(self, dm: dict[str, Any]) -> bool:
        """Its generation serves (a pod that died meanwhile is being restarted: nothing to deploy)."""
        return self.pods.generation(_key(dm)) == dm["metadata"]["generation"]

    def get(self, kind: str, namespace: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        kind = canonical_kind(kind)
        if name is not None:
            item = self.store.get((kind, namespace or self.settings.project, name))
            if item is None:
                raise NotFound(
                    f'{kind} "{name}" not found in namespace {namespace or self.settings.project}',
                    code="resource.not-found",
                    hint=f"`gdc-sandbox get {kind}` lists them",
                )
            return [self.view(item)]
        return [self.view(item) for item in self.store.list(kind, namespace)]

    def delete(self, kind: str, namespace: str | None, name: str) -> tuple[dict[str, Any], list[str]]:
        """Delete a resource; returns it and warnings (an Endpoint that still routes traffic to it)."""
        kind = canonical_kind(kind)
        key = (kind, namespace or self.settings.project, name)
        item = self.store.delete(key)
        if item is None:
            raise NotFound(f'{kind} "{name}" not found', code="resource.not-found")
        warnings = []
        if kind == "DeployedModel":
            self.deployer.enqueue(key)
            for endpoint, percent, others in self._routes_to(key):
                now = (
                    f"that share now goes to {', '.join(others)}"
                    if others
                    else "the endpoint now answers 503 (endpoint.not-ready)"
                )
                warnings.append(
                    f"Endpoint {endpoint} still gives DeployedModel {name} {percent}% of its traffic: {now}; point the "
                    f"Endpoint elsewhere (`gdc-sandbox deploy` another version to it, or `gdc-sandbox apply` the "
                    f"Endpoint with other destinations)"
                )
        return item, warnings

    def _routes_to(self, key: Key) -> list[tuple[str, int, list[str]]]:
        """(endpoint name, traffic %, the other DeployedModels with traffic) of every Endpoint that gives a
        DeployedModel traffic."""
        found = []
        for endpoint in self.store.list("Endpoint", key[1]):
            mine, others = 0, []
            for dest in endpoint["spec"]["destinations"]:
                ref = dest["serviceRef"]
                if (ref["name"], ref.get("namespace") or key[1]) == (key[2], key[1]):
                    mine += int(dest["trafficPercentage"])
                elif dest["trafficPercentage"]:
                    others.append(ref["name"])
            if mine:
                found.append((endpoint["metadata"]["name"], mine, others))
        return found

    def view(self, item: dict[str, Any]) -> dict[str, Any]:
        """A resource as `get` shows it: Endpoint status derived from its DeployedModels, ResourcePool status
        from the replicas of the DeployedModels in it; resources stored by older sandboxes in today's shape."""
        item["apiVersion"] = API_VERSION_OF[item["kind"]]
        if item["kind"] == "Endpoint":
            item["status"] = self._endpoint_status(item)
        elif item["kind"] == "DeployedModel":
            item["status"] = normalised(item.get("status") or {}, item["metadata"]["name"])
        else:
            users = self._deployed_models_using(_key(item))
            item["status"] = {
                "currentReplicas": sum((dm.get("status") or {}).get("currentReplicas", 0) for dm in users),
                "desiredReplicas": sum((dm.get("status") or {}).get("desiredReplicas", 0) for dm in users),
                "deployedModels": [dm["metadata"]["name"] for dm in users],
            }
        return item

    def _deployed_models_using(self, pool_key: Key) -> list[dict[str, Any]]:
        return [
            dm
            for dm in self.store.list("DeployedModel", pool_key[1])
            if (dm["spec"].get("resourcePoolRef") or {}).get("name") == pool_key[2]
        ]

    # -- endpoints -----------------------------------------------------------------------------
    def endpoint_url(self, namespace: str, name: str) -> str:
        return f"{self.gateway_url}/endpoints/{namespace}/{name}"

    def _endpoint_status(self, endpoint: dict[str, Any]) -> dict[str, Any]:
        ns, name = endpoint["metadata"]["namespace"], endpoint["metadata"]["name"]
        destinations, waiting = [], []
        unroutable = []
        for dest in endpoint["spec"]["destinations"]:
            ref = dest["serviceRef"]
            kind = ref.get("kind", "DeployedModel")
            if kind != "DeployedModel":
                destinations.append(
                    {"serviceRef": ref, "trafficPercentage": dest["trafficPercentage"], "serving": False}
                )
                if dest["trafficPercentage"] > 0:
                    unroutable.append(f"{kind} {ref['name']}")
                continue
            key = ("DeployedModel", ref.get("namespace") or ns, ref["name"])
            dm = self.store.get(key)
            serving = bool(self._ready_pods(key))
            destinations.append(
                {
                    "deployedModel": ref["name"],
                    "trafficPercentage": dest["trafficPercentage"],
                    "deployedModelID": (dm or {}).get("status", {}).get("deployedModelID"),
                    "serving": serving,
                }
            )
            if not serving and dest["trafficPercentage"] > 0:
                waiting.append(ref["name"] if dm else f"{ref['name']} (not found)")
        if unroutable:
            message = "the sandbox routes only to DeployedModels, not to " + ", ".join(unroutable)
            cond = {**ENDPOINT_READY, "status": "False", "reason": "DestinationNotRoutable", "message": message}
        elif waiting:
            message = "waiting for DeployedModel(s): " + ", ".join(waiting)
            cond = {**ENDPOINT_READY, "status": "False", "reason": "DeployedModelNotReady", "message": message}
        else:
            cond = dict(ENDPOINT_READY)
        endpoint_id = endpoint["spec"].get("id") or name
        url = self.endpoint_url(ns, name)
        return {
            "conditions": [cond],
            "endpointFQDN": f"{endpoint_id}.{ns}.{PREDICTION_DOMAIN}",
            "endpointURL": url,
            "predictURL": f"{url}/v1/model:predict",
            "destinations": destinations,
        }

    def find_endpoint(self, namespace: str, endpoint: str, readonly: bool = False) -> dict[str, Any]:
        """The Endpoint by name or by ``spec.id``; ``readonly`` hands out the stored item, not a copy."""
        key = ("Endpoint", namespace, endpoint)
        item = self.store.peek(key) if readonly else self.store.get(key)
        if item is None:
            item = next((e for e in self.store.list("Endpoint", namespace) if e["spec"].get("id") == endpoint), None)
        if item is None:
            raise NotFound(
                f"endpoint {endpoint!r} not found in project {namespace!r}",
                code="endpoint.not-found",
                hint="`gdc-sandbox get endpoints -n PROJECT` lists the endpoints",
            )
        return item

    def route(self, namespace: str, endpoint: str) -> tuple[str, PodInfo, str]:
        """Pick a ready pod by traffic split (a pod that died is out of the table until it is restarted, one
        whose readiness probe fails is out until it answers); returns (deployedModelId, pod, deployed model name)."""
        item = self.find_endpoint(namespace, endpoint, readonly=True)  # the hot path: nothing is copied
        choices: list[tuple[int, Key]] = []
        waiting: list[tuple[int, Key]] = []
        for dest in item["spec"]["destinations"]:
            ref = dest["serviceRef"]
            kind = ref.get("kind", "DeployedModel")
            key = (kind, ref.get("namespace") or item["metadata"]["namespace"], ref["name"])
            if dest["trafficPercentage"] > 0:
                routable = kind != "DeployedModel" or self._ready_pods(key)
                (choices if routable else waiting).append((dest["trafficPercentage"], key))
        while choices:
            _, key = random.choices(choices, weights=[w for w, _ in choices])[0]
            if key[0] != "DeployedModel":
                raise SandboxError(
                    f"endpoint {endpoint!r} sent this request to {key[0]} {key[2]}, which the sandbox cannot reach",
                    code="endpoint.destination-not-routable",
                    hint="the sandbox routes only to DeployedModels; give this destination trafficPercentage: 0 "
                    "to test the rest",
                ).with_status(503)
            pod = self.pods.pick(key)
            if pod is not None:
                dm = self.store.peek(key) or {}
                return str(dm.get("status", {}).get("deployedModelID", "")), pod, key[2]
            choices = [c for c in choices if c[1] != key]  # its last pod died a moment ago
            waiting.append((0, key))
        raise self._not_serving(endpoint, [key for _, key in waiting])

    def _ready_pods(self, key: Key) -> list[PodInfo]:
        """The pods in traffic of a DeployedModel that exists (a deleted one's pods are on their way out; a pod
        whose readiness probe fails is out until it answers)."""
        return self.pods.ready(key) if self.store.exists(key) else []

    def _not_serving(self, endpoint: str, keys: list[Key]) -> SandboxError:
        """Endpoint traffic with no ready pod: which DeployedModel, its state, and where its pod's log is."""
        states, logs, missing = [], [], []
        for key in keys:
            dm = self.store.get(key)
            if dm is None:
                states.append(f"DeployedModel {key[2]} does not exist")
                missing.append(key)
                continue
            status = dm.get("status") or {}
            cond = status.get("primaryCondition") or {}
            states.append(f"DeployedModel {key[2]} is {cond.get('reason', 'not deployed')}: " + _first_line(cond))
            logs += [
                r["log"]
                for r in status.get("replicas", [])
                if r.get("log") and (r.get("state") != "Running" or r.get("ready") is False)
            ]
        name = keys[0][2] if len(keys) == 1 else "NAME"
        hint = f"`gdc-sandbox get deployedmodel {name} -o yaml` shows its status and lastTermination"
        if missing and len(missing) == len(keys):  # nothing to look at: the Endpoint names what was deleted
            hint = (
                f"`gdc-sandbox deploy` a version to endpoint {endpoint}, or `gdc-sandbox apply` the Endpoint with "
                "destinations that exist"
            )
        if logs:
            hint = f"the pod log is {logs[0]}; " + hint
        return SandboxError(
            f"endpoint {endpoint!r} has no ready replica to serve: " + "; ".join(states),
            code="endpoint.not-ready",
            hint=hint,
        ).with_status(503)

    def describe_unreachable(self, dm_name: str, pod: PodInfo, error: Exception) -> SandboxError:
        """A pod that did not answer the gateway, in the sandbox's words (not urllib3's)."""
        hint = f"its log is {pod.process.log_path}"
        killed = self.deployer.liveness_kill(pod)
        if killed:
            problem = f"did not answer: {killed}, so the control plane killed it (it is restarted with back-off)"
        elif not pod.process.is_alive():
            problem = "did not answer: its process has exited (the control plane restarts it)"
        elif isinstance(error, TimeoutError):
            problem = f"did not answer within {self.settings.deploy_timeout:g}s"
            problem += stopped_note(pod.process.pid) if is_stopped(pod.process.pid) else ""
            hint += (
                "; its probes take a pod that stays silent out of traffic, then restart it"
                if self.settings.probe_period > 0
                else "; probes are off (GDC_SANDBOX_PROBE_PERIOD=0): it stays in traffic until it answers"
            )
        else:
            problem = "did not answer: it refused the connection"
        tail = tail_of(pod.process.log_path).strip().splitlines()
        return SandboxError(
            f"pod {pod.name} of DeployedModel {dm_name} {problem}",
            code="predict.model-server-unreachable",
            hint=hint + "; `gdc-sandbox status` shows its state" + (f"; its log ends with: {tail[-1]}" if tail else ""),
        ).with_status(503)

    def probe(self, namespace: str, endpoint: str) -> dict[str, Any]:
        """Ask every ready pod behind an endpoint whether it answers; ready when each destination with traffic
        has at least one pod that does."""
        item = self.find_endpoint(namespace, endpoint)
        answers, ready = [], True
        for dest in item["spec"]["destinations"]:
            ref = dest["serviceRef"]
            key = ("DeployedModel", ref.get("namespace") or item["metadata"]["namespace"], ref["name"])
            pods = [(pod.name, health_check(pod, 2).healthy) for pod in self._ready_pods(key)]
            answers.append({"deployedModel": ref["name"], "pods": [{"name": n, "answers": ok} for n, ok in pods]})
            if dest["trafficPercentage"] > 0 and not any(ok for _, ok in pods):
                ready = False
        return {"ready": ready, "destinations": answers}

    # -- deploy shorthand ----------------------------------------------------------------------
    def deploy(
        self,
        uri: str,
        image: str,
        endpoint: str,
        namespace: str | None = None,
        force: bool = False,
        replicas: int = 1,
        machine_type: str = "n2-standard-2-gdc",
        traffic: int = 100,
    ) -> dict[str, Any]:
        """Write the ResourcePool/DeployedModel pair that `gdc-sandbox deploy` stands for (the Endpoint follows
        once the DeployedModel is ready). Every name and argument is validated first, the Endpoint it will
        write included, with `apply`'s wording: a refused deploy changes nothing."""
        ns = namespace or self.settings.project
        artifact = ArtifactURI.parse(uri)
        img = resolve(image)
        if not 1 <= replicas <= 8:
            raise UsageError(
                f"--replicas {replicas}: must be from 1 to 8 (the ResourcePool's minReplica)",
                code="deploy.bad-replicas",
            )
        if not 1 <= traffic <= 100:
            raise UsageError(
                f"--traffic {traffic}: must be a percentage from 1 to 100",
                code="deploy.bad-traffic",
                hint="--traffic 10 sends 10% of the endpoint's requests to the new version; the rest stays "
                "with what serves now",
            )
        dm_name = _dns(f"{endpoint}-{artifact.model_id}-{artifact.version_id}")
        pool_name = _dns(f"{endpoint}-pool")
        current = self.store.get(("Endpoint", ns, endpoint))
        endpoint_doc = self._endpoint_document(endpoint, dm_name, ns, traffic, current)
        validate(endpoint_doc, f"--endpoint {endpoint!r}", ns)  # the Endpoint is written later: check it now
        objects = self.s3.list_artifact(artifact)
        if not objects:
            raise NotFound(
                f"nothing is uploaded at {artifact}",
                code="deploy.artifact-not-found",
                hint=f"upload the model first: gdc-sandbox upload ./my_export {artifact}",
            )
        annotations = {ATTACH_ANNOTATION: endpoint, DIGEST_ANNOTATION: _digest(objects)}
        if traffic != 100:
            annotations[TRAFFIC_ANNOTATION] = str(traffic)
        if force:
            annotations[FORCE_ANNOTATION] = "true"
        documents = [
            {
                "apiVersion": API_VERSION_OF["ResourcePool"],
                "kind": "ResourcePool",
                "metadata": {"name": pool_name, "namespace": ns},
                "spec": {
                    "resourcePoolID": pool_name,
                    "dedicatedResources": {
                        "machineSpec": {"machineType": machine_type},
                        "autoscaling": {"minReplica": replicas, "maxReplica": max(replicas, 1)},
                    },
                },
            },
            {
                "apiVersion": API_VERSION_OF["DeployedModel"],
                "kind": "DeployedModel",
                "metadata": {"name": dm_name, "namespace": ns, "annotations": annotations},
                "spec": {
                    "endpointPath": f"projects/{ns}/locations/{self.settings.location}/endpoints/{endpoint}",
                    "modelSpec": {
                        "artifactLocation": str(artifact),
                        "id": artifact.model_id,
                        "modelVersionID": artifact.version_id,
                        "modelContainerSpec": {"imageURI": img.name},
                    },
                    "resourcePoolRef": {"kind": "ResourcePool", "name": pool_name, "namespace": ns},
                },
            },
        ]
        self.apply(documents, ns)
        serving_now = [
            {"deployedModel": d["serviceRef"]["name"], "trafficPercentage": d["trafficPercentage"]}
            for d in (current or {}).get("spec", {}).get("destinations", [])
            if d["serviceRef"]["name"] != dm_name
        ]
        return {
            "deployedModel": dm_name,
            "namespace": ns,
            "endpoint": endpoint,
            "resourcePool": pool_name,
            "imageWarnings": img.warnings(),
            "replacing": serving_now if traffic == 100 else [],
            "sharingWith": serving_now if traffic != 100 else [],
        }

    def _on_ready(self, key: Key, dm: dict[str, Any]) -> None:
        """A shorthand deployment is ready: give it its share of the endpoint's traffic; with all of it, the
        DeployedModels that `deploy` put on that endpoint before are deleted."""
        annotations = dm["metadata"].get("annotations", {})
        endpoint = annotations.get(ATTACH_ANNOTATION)
        if not endpoint:
            return
        ns, name = key[1], key[2]
        current = self.store.get(("Endpoint", ns, endpoint))
        doc = self._endpoint_document(endpoint, name, ns, int(annotations.get(TRAFFIC_ANNOTATION, 100)), current)
        before = [d["serviceRef"]["name"] for d in (current or {}).get("spec", {}).get("destinations", [])]
        if current is not None and current["spec"]["destinations"] == doc["spec"]["destinations"]:
            return
        self.apply([doc], ns)
        kept = {d["serviceRef"]["name"] for d in doc["spec"]["destinations"]}
        for old in before:
            old_dm = self.store.get(("DeployedModel", ns, old))
            if (
                old not in kept
                and old_dm
                and old_dm["metadata"].get("annotations", {}).get(ATTACH_ANNOTATION) == endpoint
            ):
                self.delete("DeployedModel", ns, old)

    def _endpoint_document(
        self, endpoint: str, dm_name: str, namespace: str, traffic: int, current: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The Endpoint once ``dm_name`` takes ``traffic`` % of it; the others share the rest as they did."""
        spec = (current or {}).get("spec") or {"id": endpoint, "createDns": True}
        others = [d for d in spec.get("destinations", []) if d["serviceRef"]["name"] != dm_name]
        destinations = _scaled(others, 100 - traffic) if traffic < 100 and others else []
        destinations.append(
            {
                "serviceRef": {"kind": "DeployedModel", "name": dm_name, "namespace": namespace},
                "trafficPercentage": traffic if destinations else 100,
            }
        )
        return {
            "apiVersion": API_VERSION_OF["Endpoint"],
            "kind": "Endpoint",
            "metadata": {"name": endpoint, "namespace": namespace},
            "spec": {
                "id": spec.get("id") or endpoint,
                "createDns": spec.get("createDns", True),
                "destinations": destinations,
            },
        }


def _key(item: dict[str, Any]) -> Key:
    return item["kind"], item["metadata"]["namespace"], item["metadata"]["name"]


def _scaled(destinations: list[dict[str, Any]], total: int) -> list[dict[str, Any]]:
    """The destinations with their percentages scaled to add up to ``total`` (the largest takes the rounding)."""
    weights = [int(d["trafficPercentage"]) for d in destinations]
    whole = sum(weights) or len(weights)
    shares = [(w if sum(weights) else 1) * total // whole for w in weights]
    shares[weights.index(max(weights))] += total - sum(shares)
    return [{**d, "trafficPercentage": share} for d, share in zip(destinations, shares, strict=True)]


def _digest(objects: list[dict[str, Any]]) -> str:
    listing = "\n".join(f"{o['Key']} {o['ETag']}" for o in sorted(objects, key=lambda o: o["Key"]))
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def _first_line(cond: dict[str, Any]) -> str:
    return str(cond.get("message", "")).splitlines()[0] if cond.get("message") else "no status yet"


def _dns(name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return cleaned[:63].rstrip("-") or "model"


__all__ = ["Controller", "endpoint_path_parts"]
