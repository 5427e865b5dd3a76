"""Run one scenario on one image: get the artifact (built or given) and upload it, deploy once, then each case."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.engine import Sandbox, created_by_deploy
from sandbox.errors import SandboxError
from sandbox.repro.source import materialize
from sandbox.runtimes.serverlog import failure_report
from sandbox.testing.reference import reference_error
from sandbox.testing.scenario import Built, Case, Scenario, ScenarioError, load_builder


class ScenarioFailure(AssertionError):
    """A scenario expectation that did not hold; carries the evidence for the report."""

    def __init__(
        self,
        summary: str,
        *,
        request: Any = None,
        expected: Any = None,
        actual: Any = None,
        tolerance: str = "",
        server_log: str = "",
    ) -> None:
        super().__init__(summary)
        self.summary = summary
        self.request = request
        self.expected = expected
        self.actual = actual
        self.tolerance = tolerance
        self.server_log = server_log

    def render(self) -> str:
        lines = [f"scenario failed: {self.summary}"]
        for label, value in (("request", self.request), ("expected", self.expected), ("actual", self.actual)):
            if value is not None:
                lines.append(f"  {label}: {_short(value)}")
        if self.tolerance:
            lines.append(f"  tolerance: {self.tolerance}")
        if self.server_log:
            lines += ["  " + line for line in self.server_log.splitlines()]
        return "\n".join(lines)


@dataclass
class ScenarioRun:
    """State shared by the cases of one scenario file on one image."""

    scenario: Scenario
    path: Path
    sandbox: Sandbox
    image: str = ""
    """The image this run deploys to (one of the scenario's images)."""
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gdc-scenario-")))
    built: Built | None = None
    endpoint: str = ""
    deployed_model: str = ""
    deploy_error: SandboxError | None = None
    prepared: bool = False
    created: list[tuple[str, str]] = field(default_factory=list)
    """Resources this run created, deleted again by :meth:`cleanup`."""
    uploaded: str = ""
    """The version folder this run uploaded, deleted again by :meth:`cleanup`."""

    def __post_init__(self) -> None:
        self.image = self.image or self.scenario.all_images[0]

    def prepare(self) -> None:
        """Get the artifact, upload, check and deploy exactly once; expectations on these steps are asserted here."""
        if self.prepared:
            if self.deploy_error is not None and self.scenario.deploy.expect == "ready":
                raise ScenarioFailure(f"deploy failed earlier: {self.deploy_error.message}")
            return
        self.prepared = True
        uri = self._artifact_uri()
        if self.scenario.check is not None:
            self._assert_check(uri)
        several = len(self.scenario.all_images) > 1
        suffix = "-" + self.image.replace(".", "-") if several else ""
        self.endpoint = f"scn-{self.scenario.scenario[: 49 - 4 - len(suffix)]}{suffix}"
        try:
            deployment = self.sandbox.deploy(
                uri,
                self.image,
                self.endpoint,
                force=self.scenario.deploy.force,
                replicas=self.scenario.deploy.replicas,
            )
            self.deployed_model = deployment.deployed_model
            self.created = created_by_deploy(self.endpoint, deployment)
        except SandboxError as exc:
            self.deploy_error = exc
            self.created = created_by_deploy(self.endpoint, exc)
        self._assert_deploy()

    def _artifact_uri(self) -> str:
        """The s3:// version folder to deploy: built or taken from ``artifact:``, and uploaded, unless already s3://."""
        if self.scenario.build is not None:
            self.built = load_builder(self.path, self.scenario.build)(self.workdir / "artifact")
            folder = self.built.artifact
        else:
            given = str(self.scenario.artifact)
            if given.startswith("s3://"):
                return given
            path = (self.path.parent / given).resolve()
            if not path.exists():
                raise ScenarioError(f"{self.path}: artifact: {given!r}: there is no {path}")
            max_bytes = self.sandbox.settings.max_extract_bytes
            folder = materialize(str(path), self.workdir, max_bytes=max_bytes).folder
        version = f"{int(time.time() * 1000)}{os.getpid() % 1000:03d}"
        uri = f"s3://{self.sandbox.settings.bucket}/{self.scenario.scenario}/{version}"
        self.uploaded = uri
        self.sandbox.upload(folder, uri, progress=False)
        return uri

    def _assert_check(self, uri: str) -> None:
        expect = self.scenario.check
        assert expect is not None
        report = self.sandbox.check(uri, self.image)
        codes = [d.code for d in report.diagnostics]
        missing = [c for c in expect.codes if c not in codes]
        if missing or (expect.ok is not None and report.ok != expect.ok):
            raise ScenarioFailure(
                "the preflight checker did not report what the scenario expects",
                expected={"codes": expect.codes, "ok": expect.ok},
                actual={"codes": codes, "ok": report.ok},
            )

    def _assert_deploy(self) -> None:
        expect = self.scenario.deploy
        if expect.expect == "ready" and self.deploy_error is not None:
            raise ScenarioFailure(f"deploy failed: {self.deploy_error.message}", server_log=self.deploy_error.details)
        if expect.expect == "failed":
            if self.deploy_error is None:
                raise ScenarioFailure("deploy succeeded but the scenario expects the model server to fail")
            wanted = expect.error_contains
            wanted_list = [wanted] if isinstance(wanted, str) else list(wanted or [])
            text = f"{self.deploy_error.message}\n{self.deploy_error.details}"
            absent = [w for w in wanted_list if w not in text]
            if absent:
                raise ScenarioFailure(
                    "the deploy failure does not carry the expected message",
                    expected=absent,
                    actual=self.deploy_error.message,
                    server_log=self.deploy_error.details,
                )

    def run_case(self, case: Case) -> None:
        self.prepare()
        if self.deploy_error is not None:
            raise ScenarioFailure("cannot run a case: the model is not deployed")
        body = json.dumps(case.body if case.body is not None else {"instances": case.instances}).encode()
        status, answer = self.sandbox.predict(self.endpoint, body=body)
        expect = case.expect
        request = case.body if case.body is not None else {"instances": case.instances}
        if status != expect.status:
            raise ScenarioFailure(
                f"HTTP {status}, expected {expect.status}",
                request=request,
                expected=expect.status,
                actual=answer,
                server_log=self._server_log(),
            )
        if expect.error_contains and not _carries(answer, expect.error_contains):
            raise ScenarioFailure(
                "the error does not carry the expected text",
                request=request,
                expected=expect.error_contains,
                actual=answer,
            )
        predictions = answer.get("predictions") if isinstance(answer, dict) else None
        if expect.predictions is not None:
            _assert_close(predictions, expect.predictions, expect.atol, expect.rtol, request)
        if expect.predictions_file is not None:
            expected = self._json_file(expect.predictions_file, "predictions_file")
            _assert_close(predictions, expected, expect.atol, expect.rtol, request)
        if expect.match_reference:
            if self.built is None or self.built.reference is None:
                raise ScenarioFailure("match_reference needs the builder to return a reference function")
            if expect.status >= 400:  # the framework's own error, as this machine's kernels word it
                wanted = reference_error(self.built.reference, case.instances)
                error = answer.get("error") if isinstance(answer, dict) else None
                if wanted not in (error.get("message", "") if isinstance(error, dict) else json.dumps(answer)):
                    raise ScenarioFailure(
                        "the error is not the one the framework raises in-process",
                        request=request,
                        expected=wanted,
                        actual=answer,
                    )
                return
            _assert_close(predictions, self.built.reference(case.instances), expect.atol, expect.rtol, request)

    def _json_file(self, name: str, key: str) -> Any:
        path = self.path.parent / name
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"{self.path}: {key}: {name!r} is not a readable JSON file: {exc}") from None

    def _server_log(self) -> str:
        try:
            pods = [p for p in self.sandbox.pods() if p["deployedModel"] == self.deployed_model]
        except SandboxError:
            return ""
        if not pods:
            return ""
        return failure_report(Path(pods[0]["log"]), 20)

    def cleanup(self) -> None:
        """Delete what this run created in the sandbox (resources and its upload), then its temp folder."""
        self.sandbox.delete_quietly(self.created)
        if self.uploaded:
            with contextlib.suppress(SandboxError):
                self.sandbox.delete_version(self.uploaded)
        self.created, self.uploaded = [], ""
        shutil.rmtree(self.workdir, ignore_errors=True)


def _assert_close(actual: Any, expected: Any, atol: float, rtol: float, request: Any) -> None:
    if not values_close(actual, expected, atol, rtol):
        raise ScenarioFailure(
            "predictions differ from the expected values",
            request=request,
            expected=expected,
            actual=actual,
            tolerance=f"atol={atol} rtol={rtol}",
        )


def values_close(a: Any, b: Any, atol: float, rtol: float) -> bool:
    """Equal structure and strings, numbers within ``atol + rtol * |b|`` (NaN equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_close(a[k], b[k], atol, rtol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(values_close(x, y, atol, rtol) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= atol + rtol * abs(b)
    return bool(a == b)


def _carries(answer: Any, text: str) -> bool:
    """``text`` appears in the answer's JSON or in one of its strings as a person reads it (quotes unescaped)."""
    return text in json.dumps(answer) or any(text in s for s in _strings(answer))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [s for item in items for s in _strings(item)]


def _short(value: Any, limit: int = 600) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "..."
