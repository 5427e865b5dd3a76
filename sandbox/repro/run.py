"""``gdc-sandbox repro``: check, upload, deploy (forced) and predict one artifact on one or more images.

>>> result = reproduce(ReproRequest("customer.tgz", ["tf2-cpu.2-18"], out=Path("repro-out")))  # doctest: +SKIP
>>> result.exit_code, result.images[0].verdict                                                # doctest: +SKIP
(1, 'does not serve')

It runs in a private sandbox (free ports, a temporary home) unless ``use_running`` is set, so the user's
deployments and bucket are never touched; whatever it created in a running sandbox is removed again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.engine import Sandbox, created_by_deploy
from sandbox.errors import SandboxError, UsageError
from sandbox.images import Image, resolve
from sandbox.repro import source as sources
from sandbox.repro.probe import Probe, synthesize
from sandbox.repro.versions import versions
from sandbox.runtimes.serverlog import error_lines
from sandbox.settings import Settings
from sandbox.uri import ArtifactURI

SCENARIO_DIR = "scenario"
"""The sub-folder of the output that becomes a regression test: ``cp -r OUT/scenario scenarios/bugs/NAME``."""
SERVES, FAILS, NOT_PROBED = "serves", "does not serve", "deploys (not probed)"


@dataclass
class ReproRequest:
    """What to reproduce, where, and with which request."""

    source: str
    images: list[str]
    out: Path
    instances: list[Any] | None = None
    use_running: bool = False
    keep_artifact: bool = True
    """Copy the artifact into ``out/scenario/artifact/`` (``scenario new`` points at it in place instead)."""
    settings: Settings = field(default_factory=Settings)
    progress: Callable[[str], None] = lambda message: None


@dataclass
class ImageRun:
    """What one image did with the artifact."""

    image: str
    versions: dict[str, str] = field(default_factory=dict)
    check: dict[str, Any] = field(default_factory=dict)
    deployed: bool = False
    deploy_error: dict[str, str] | None = None
    server_errors: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    status: int | None = None
    answer: Any = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if not self.deployed:
            return FAILS
        if self.status is None:
            return NOT_PROBED
        return SERVES if self.status < 400 else FAILS


@dataclass
class Repro:
    """The whole reproduction: written to report.md / report.json and turned into a scenario."""

    source: str
    kind: str
    name: str
    note: str
    out: Path
    artifact: str
    """The artifact as kept in ``out/scenario/``, relative to that folder."""
    probe: Probe
    instances_given: bool
    framework: str | None = None
    uri: str = ""
    started: str = ""
    sandbox: str = ""
    images: list[ImageRun] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 every image serves, 1 one does not (the reproduction succeeded)."""
        return 1 if any(run.verdict == FAILS for run in self.images) else 0


def reproduce(request: ReproRequest) -> Repro:
    """Run the reproduction and write everything into ``request.out``; raise SandboxError if it cannot run."""
    images = [resolve(name) for name in request.images]
    if not images:
        raise UsageError("give at least one --image", code="repro.no-image", hint="e.g. --image tf2-cpu.2-18")
    for image in images:
        if not image.native:
            raise UsageError(
                f"image {image.name} cannot run in this sandbox (no {image.framework} {image.version} build for this "
                "Python), so a reproduction could not tell whether the artifact serves on it",
                code="repro.image-not-runnable",
                hint="`gdc-sandbox check --image` still judges the artifact statically for that image",
            )
    sources.kind_of(request.source)
    out = _prepare_out(request.out)
    work = out / ".work"
    finished = False
    try:
        download = _downloader(request.settings) if request.source.startswith("s3://") else None
        src = sources.materialize(request.source, work, max_bytes=request.settings.max_extract_bytes, download=download)
        probe = Probe(request.instances, "given on the command line") if request.instances is not None else None
        result = Repro(
            source=request.source,
            kind=src.kind,
            name=src.name,
            note=src.note,
            out=out,
            artifact=_keep_artifact(request.source, src, out) if request.keep_artifact else "",
            probe=probe or synthesize(src.folder),
            instances_given=probe is not None,
            started=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        )
        with _sandbox(request) as sandbox:
            result.sandbox = "the running sandbox" if request.use_running else "a private sandbox"
            _run_all(sandbox, src, images, result, request.progress)
        finished = True
    finally:
        shutil.rmtree(work if finished else out, ignore_errors=True)
    return result


def _prepare_out(out: Path) -> Path:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            f"{out} already exists and is not an empty folder",
            code="repro.out-exists",
            hint="choose a new --out folder (the default is ./repro-NAME-TIME/)",
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _downloader(settings: Settings) -> sources.Download:
    def download(uri: str, dest: Path) -> None:
        Sandbox(settings).store().download(ArtifactURI.parse(uri), dest)

    return download


def _keep_artifact(given: str, src: sources.Source, out: Path) -> str:
    """Copy the artifact as it was handed over into ``out/scenario/artifact/`` (an archive stays an archive);
    returns its path relative to ``out/scenario/``."""
    keep = out / SCENARIO_DIR / "artifact"
    keep.mkdir(parents=True)
    if src.kind in ("archive", "mar"):
        shutil.copy2(given, keep / Path(given).name)
        return f"artifact/{Path(given).name}"
    shutil.copytree(src.folder, keep / src.name, symlinks=True)
    return f"artifact/{src.name}"


@contextlib.contextmanager
def _sandbox(request: ReproRequest) -> Iterator[Sandbox]:
    if request.use_running:
        sandbox = Sandbox(request.settings)
        sandbox.running()
        yield sandbox
        return
    home = Path(tempfile.mkdtemp(prefix="gdc-repro-"))
    warm = ",".join(request.images) or "none"  # each image's warm server (fork server, idle TorchServe)
    private = {"home": home, "s3_port": 0, "gateway_port": 0, "warm_images": warm}
    settings = Settings(**{**request.settings.model_dump(), **private})
    sandbox = Sandbox(settings)
    try:
        request.progress("starting a private sandbox")
        sandbox.up()
        yield sandbox
    finally:
        sandbox.down()
        shutil.rmtree(home, ignore_errors=True)


def _run_all(
    sandbox: Sandbox, src: sources.Source, images: list[Image], result: Repro, say: Callable[[str], None]
) -> None:
    from sandbox.artifacts import check_artifact

    stamp = f"{time.strftime('%Y%m%d%H%M%S')}{os.getpid() % 1000:03d}"  # two runs at once never collide
    result.uri = f"s3://{sandbox.settings.bucket}/repro-{src.name}/{stamp}"
    runs = [ImageRun(image.name) for image in images]
    result.images = runs
    for image, run in zip(images, runs, strict=True):
        say(f"{image.name}: check")
        started = time.monotonic()
        report = check_artifact(src.folder, image)
        run.check = report.to_dict()
        run.timings["check_s"] = time.monotonic() - started
        result.framework = result.framework or report.framework
    say(f"upload to {result.uri}")
    started = time.monotonic()
    sandbox.upload(src.folder, result.uri, progress=False)
    upload_s = time.monotonic() - started
    try:
        for index, (image, run) in enumerate(zip(images, runs, strict=True)):
            run.timings["upload_s"] = upload_s
            _run_image(sandbox, result, image, run, f"repro-{src.name[:24]}-{stamp[-7:]}{index}", say)
    finally:
        with contextlib.suppress(SandboxError):
            sandbox.delete_version(result.uri)


def _run_image(
    sandbox: Sandbox, result: Repro, image: Image, run: ImageRun, endpoint: str, say: Callable[[str], None]
) -> None:
    run.versions = versions(image)
    say(f"{image.name}: deploy --force (the model server loads the artifact)")
    started = time.monotonic()
    try:
        deployment = sandbox.deploy(result.uri, image.name, endpoint, force=True)
        run.deployed = True
        created, dm = created_by_deploy(endpoint, deployment), deployment.deployed_model
    except SandboxError as exc:
        created, dm = created_by_deploy(endpoint, exc), getattr(exc, "deployed_model", "")
        run.deploy_error = {"code": exc.code, "message": exc.message, "hint": exc.hint}
        run.server_errors = _reported_errors(exc.details)
    run.timings["deploy_s"] = time.monotonic() - started
    try:
        if run.deployed and result.probe.instances is not None:
            say(f"{image.name}: predict")
            started = time.monotonic()
            run.status, run.answer = sandbox.predict(endpoint, result.probe.instances)
            run.timings["predict_s"] = time.monotonic() - started
        run.logs = _copy_logs(sandbox, dm, result.out / "logs" / image.name)
        if not run.server_errors and run.verdict == FAILS:
            run.server_errors = [line for log in run.logs for line in error_lines(result.out / log)][-12:]
    finally:
        sandbox.delete_quietly(created)


def _reported_errors(details: str) -> list[str]:
    """The "model server errors:" block of a deploy failure's details."""
    lines = details.splitlines()
    if "model server errors:" not in lines:
        return []
    block = lines[lines.index("model server errors:") + 1 :]
    return [line.strip() for line in block if line.startswith("  ")][:12]


def _copy_logs(sandbox: Sandbox, deployed_model: str, dest: Path) -> list[str]:
    """Copy the model-server logs of ``deployed_model`` (and its TorchServe workers') into ``dest``."""
    settings = sandbox.settings
    ns = settings.project
    found = sorted((settings.log_dir / "pods").glob(f"{ns}-{deployed_model}-g*.log")) if deployed_model else []
    for pod_log in list(found):
        found += sorted((settings.run_dir / "pods" / pod_log.stem / "logs").glob("worker-*.log"))
    copied = []
    dest.mkdir(parents=True, exist_ok=True)
    for path in found:
        target = dest / (path.name if path.parent.name == "pods" else f"{path.parent.parent.name}.{path.name}")
        shutil.copy2(path, target)
        copied.append(target.relative_to(dest.parents[1]).as_posix())
    return copied
