"""The control plane engine: apply/get/delete resources, the deploy shorthand, endpoint views and routing."""

from __future__ import annotations

import random
from typing import Any

from sandbox.control.autoscaler import Autoscaler
from sandbox.control.conditions import normalised
from sandbox.control.deployer import Deployer
from sandbox.control.iam import IAM, default_bindings
from sandbox.control.pods import Key, PodTable
from sandbox.control.resources import ATTACH_ANNOTATION, FORCE_ANNOTATION, advisories, endpoint_path_parts, validate
from sandbox.control.store import ResourceStore
from sandbox.errors import NotFound, SandboxError, UsageError
from sandbox.images import resolve
from sandbox.kinds import API_VERSION_OF, canonical_kind
from sandbox.runtimes.base import PodInfo
from sandbox.s3.client import Store
from sandbox.settings import Settings
from sandbox.uri import ArtifactURI

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
        for key in self.store.keys("DeployedModel"):
            self.deployer.enqueue(key)
        self.autoscaler = Autoscaler(
            self.store, self.pods, self.deployer, settings.autoscale_interval, settings.scale_down_delay
        )
        self.autoscaler.start()

    def shutdown(self) -> None:
        self.autoscaler.stop()
        self.deployer.shutdown()

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
        status = dm.get("status") or {}
        return status.get("servingGeneration") == dm["metadata"]["generation"] and bool(self.pods.get(_key(dm)))

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

    def delete(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        kind = canonical_kind(kind)
        key = (kind, namespace or self.settings.project, name)
        item = self.store.delete(key)
        if item is None:
            raise NotFound(f'{kind} "{name}" not found', code="resource.not-found")
        if kind == "DeployedModel":
            self.deployer.enqueue(key)
        return item

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
            serving = bool(self.pods.get(key))
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
            "endpointFQDN": f"{endpoint_id}.{ns}.prediction.sandbox.localhost",
            "endpointURL": url,
            "predictURL": f"{url}/v1/model:predict",
            "destinations": destinations,
        }

    def find_endpoint(self, namespace: str, endpoint: str) -> dict[str, Any]:
        item = self.store.get(("Endpoint", namespace, endpoint))
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
        """Pick a serving pod by traffic split; returns (deployedModelId, pod, deployed model name)."""
        item = self.find_endpoint(namespace, endpoint)
        choices = []
        for dest in item["spec"]["destinations"]:
            ref = dest["serviceRef"]
            key = (ref.get("kind", "DeployedModel"), ref.get("namespace") or namespace, ref["name"])
            if dest["trafficPercentage"] > 0 and (key[0] != "DeployedModel" or self.pods.get(key)):
                choices.append((dest["trafficPercentage"], key))
        if not choices:
            raise SandboxError(
                f"endpoint {endpoint!r} has no DeployedModel ready to serve",
                code="endpoint.not-ready",
                hint="`gdc-sandbox get deployedmodels` shows why",
                details="",
            ).with_status(503)
        _, key = random.choices(choices, weights=[w for w, _ in choices])[0]
        if key[0] != "DeployedModel":
            raise SandboxError(
                f"endpoint {endpoint!r} sent this request to {key[0]} {key[2]}, which the sandbox cannot reach",
                code="endpoint.destination-not-routable",
                hint="the sandbox routes only to DeployedModels; give this destination trafficPercentage: 0 "
                "to test the rest",
            ).with_status(503)
        pod = self.pods.pick(key)
        dm = self.store.get(key) or {}
        if pod is None:
            raise SandboxError(f"DeployedModel {key[2]} lost its pods", code="endpoint.not-ready").with_status(503)
        return str(dm.get("status", {}).get("deployedModelID", "")), pod, key[2]

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
    ) -> dict[str, Any]:
        """Write the ResourcePool/DeployedModel/Endpoint trio that `gdc-sandbox deploy` stands for."""
        ns = namespace or self.settings.project
        artifact = ArtifactURI.parse(uri)
        img = resolve(image)
        dm_name = _dns(f"{endpoint}-{artifact.model_id}-{artifact.version_id}")
        pool_name = _dns(f"{endpoint}-pool")
        api = API_VERSION_OF["DeployedModel"]
        annotations = {ATTACH_ANNOTATION: endpoint}
        if force:
            annotations[FORCE_ANNOTATION] = "true"
        documents = [
            {
                "apiVersion": api,
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
                "apiVersion": api,
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
        return {
            "deployedModel": dm_name,
            "namespace": ns,
            "endpoint": endpoint,
            "resourcePool": pool_name,
            "imageWarnings": img.warnings(),
        }

    def _on_ready(self, key: Key, dm: dict[str, Any]) -> None:
        """A shorthand deployment is ready: move its endpoint's traffic to it and retire what it replaces."""
        endpoint = dm["metadata"].get("annotations", {}).get(ATTACH_ANNOTATION)
        if not endpoint:
            return
        ns, name = key[1], key[2]
        current = self.store.get(("Endpoint", ns, endpoint))
        replaced = [d["serviceRef"]["name"] for d in (current or {}).get("spec", {}).get("destinations", [])]
        if replaced == [name]:
            return
        self.attach(endpoint, name, ns)
        for old in replaced:
            old_dm = self.store.get(("DeployedModel", ns, old))
            if old != name and old_dm and old_dm["metadata"].get("annotations", {}).get(ATTACH_ANNOTATION) == endpoint:
                self.delete("DeployedModel", ns, old)

    def attach(self, endpoint: str, dm_name: str, namespace: str | None = None) -> None:
        """Point an endpoint's traffic (100%) at a DeployedModel, creating the endpoint if needed."""
        ns = namespace or self.settings.project
        doc = {
            "apiVersion": API_VERSION_OF["Endpoint"],
            "kind": "Endpoint",
            "metadata": {"name": endpoint, "namespace": ns},
            "spec": {
                "id": endpoint,
                "createDns": True,
                "destinations": [
                    {
                        "serviceRef": {"kind": "DeployedModel", "name": dm_name, "namespace": ns},
                        "trafficPercentage": 100,
                    }
                ],
            },
        }
        self.apply([doc], ns)


def _key(item: dict[str, Any]) -> Key:
    return item["kind"], item["metadata"]["namespace"], item["metadata"]["name"]


def _dns(name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return cleaned[:63].rstrip("-") or "model"


__all__ = ["Controller", "endpoint_path_parts"]
