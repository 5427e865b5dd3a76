"""The pytest plugin (entry point ``pytest11: sandbox``): a shared sandbox fixture and the scenario collector.

``pytest scenarios/`` collects every ``scenarios/**/*.yaml`` file (and any ``scenario*.yaml``, which is
what ``gdc-sandbox repro`` writes) as one :class:`ScenarioFile` with one :class:`ScenarioItem` per case
and image. Items use the sandbox already running for ``GDC_SANDBOX_HOME`` (or ``--sandbox-home``); when
none is running, the plugin starts a private one in a temporary folder on free ports and stops it at the
end of the session (``--sandbox-keep`` leaves it running);
``--sandbox-backend compose`` makes that private sandbox run on Docker (README "Docker Compose").
With pytest-xdist (``-n N --dist loadscope``) each worker process starts its own private sandbox, and the
cases of one scenario file stay together on one worker, in order.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.engine import Sandbox
from sandbox.errors import SandboxError
from sandbox.runtimes.envs import RUNTIME_CACHE_VARIABLE
from sandbox.runtimes.envs import cache_dir as runtime_cache_dir
from sandbox.settings import Settings
from sandbox.testing.runner import ScenarioFailure, ScenarioRun
from sandbox.testing.scenario import Case, Scenario, ScenarioError, load_builder, load_scenario

MARKERS = {
    "tfserving": "needs the TensorFlow runtime",
    "torchserve": "needs the TorchServe runtime (Java)",
    "requires_docker": "needs a Docker engine (`make test-compose` starts a private one)",
    "gdc_verified": "behaviour confirmed on a real GDC cluster",
    "slow": "takes more than a few seconds",
}


class SandboxSession:
    """The sandbox shared by a pytest session, started lazily on first use."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._sandbox: Sandbox | None = None
        self._private_home: Path | None = None
        self.runs: list[ScenarioRun] = []

    def get(self) -> Sandbox:
        if self._sandbox is not None:
            return self._sandbox
        home = self.config.getoption("sandbox_home") or os.environ.get("GDC_SANDBOX_HOME")
        if home and not self.config.getoption("sandbox_new"):
            existing = Sandbox(Settings(home=Path(home)))
            if existing.stack.running() is not None:
                self._sandbox = existing
                return existing
        self._private_home = Path(tempfile.mkdtemp(prefix="gdc-sandbox-pytest-"))
        backend = self.config.getoption("sandbox_backend") or Settings().backend
        sandbox = Sandbox(Settings(home=self._private_home, s3_port=0, gateway_port=0, backend=backend))
        sandbox.up()
        self._sandbox = sandbox
        return sandbox

    def close(self) -> None:
        for run in self.runs:
            run.cleanup()
        if self._private_home is not None and self._sandbox is not None:
            if self.config.getoption("sandbox_keep"):
                print(f"\nsandbox kept running at {self._private_home}")
                return
            self._sandbox.down()
            shutil.rmtree(self._private_home, ignore_errors=True)


session_key = pytest.StashKey[SandboxSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sandbox", "gdc-sandbox")
    group.addoption(
        "--sandbox-home",
        dest="sandbox_home",
        default=None,
        help="use the sandbox running for this home (default: $GDC_SANDBOX_HOME if running)",
    )
    group.addoption(
        "--sandbox-new",
        dest="sandbox_new",
        action="store_true",
        help="always start a private sandbox, even if one is running",
    )
    group.addoption(
        "--sandbox-backend",
        dest="sandbox_backend",
        choices=("native", "compose"),
        default=None,
        help="backend of the private sandbox: native processes, or Docker containers "
        "(default: $GDC_SANDBOX_BACKEND, else native)",
    )
    group.addoption(
        "--sandbox-keep",
        dest="sandbox_keep",
        action="store_true",
        help="leave the private sandbox running after the session",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    pin_runtime_cache()
    config.stash[session_key] = SandboxSession(config)


def pin_runtime_cache() -> None:
    """Name the runtime cache in the environment, so that a test that moves ``HOME`` (pytester does) still uses
    the installed per-image runtimes instead of creating them again under its temporary home."""
    os.environ.setdefault(RUNTIME_CACHE_VARIABLE, str(runtime_cache_dir()))


def pytest_sessionfinish(session: pytest.Session) -> None:
    sandbox_session = session.config.stash.get(session_key, None)
    if sandbox_session is not None:
        sandbox_session.close()


@pytest.fixture(scope="session")
def sandbox(pytestconfig: pytest.Config) -> Sandbox:
    """The session's running sandbox (override to point tests at another one)."""
    return pytestconfig.stash[session_key].get()


def is_scenario_file(path: Path) -> bool:
    """YAML files under a ``scenarios`` folder, and ``scenario*.yaml`` files elsewhere that start with a
    ``scenario:`` key (what ``repro`` writes), so that other tools' YAML files are left alone."""
    if path.suffix not in (".yaml", ".yml"):
        return False
    if "scenarios" in path.parts:
        return True
    try:
        return path.name.startswith("scenario") and path.read_text(errors="replace").lstrip().startswith("scenario:")
    except OSError:
        return False


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if is_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """One scenario file: one item per case (or one ``deploy`` item), per image."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            scenario = load_scenario(self.path, yaml.safe_load(self.path.read_text()))
        except yaml.YAMLError as exc:
            yield InvalidScenarioItem.from_parent(self, name="invalid-scenario", error=f"{self.path}: not YAML: {exc}")
            return
        except ScenarioError as exc:
            yield InvalidScenarioItem.from_parent(self, name="invalid-scenario", error=exc.message)
            return
        cases: list[Case | None] = list(scenario.cases) or [None]
        for image in scenario.all_images:
            run_holder: dict[str, ScenarioRun] = {}
            for case in cases:
                name = case.name if case else "deploy"
                item = ScenarioItem.from_parent(
                    self,
                    name=f"{name}[{image}]" if scenario.images else name,
                    scenario=scenario,
                    image=image,
                    case=case,
                    run_holder=run_holder,
                )
                item.add_marker("torchserve" if image.startswith("pytorch") else "tfserving")
                for extra in scenario.markers:
                    item.add_marker(extra)
                yield item


class ScenarioItem(pytest.Item):
    def __init__(
        self,
        *,
        scenario: Scenario,
        image: str,
        case: Case | None,
        run_holder: dict[str, ScenarioRun],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.image = image
        self.case = case
        self.run_holder = run_holder

    def runtest(self) -> None:
        session = self.config.stash[session_key]
        run = self.run_holder.get("run")
        if run is None:
            if self.scenario.build is not None:  # a wrong builder is reported before any sandbox starts
                load_builder(self.path, self.scenario.build)
            run = ScenarioRun(self.scenario, self.path, session.get(), image=self.image)
            self.run_holder["run"] = run
            session.runs.append(run)
        if self.case is None:
            run.prepare()
        else:
            run.run_case(self.case)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return excinfo.value.render()
        if isinstance(excinfo.value, ScenarioError):
            return f"error[{excinfo.value.code}]: {excinfo.value.message}"
        if isinstance(excinfo.value, SandboxError):
            return excinfo.value.render()
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.scenario.scenario}::{self.name}"


class InvalidScenarioItem(pytest.Item):
    def __init__(self, *, error: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise ScenarioFailure(self.error)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario file: {self.path.name}"


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Undeploy a scenario as soon as its last case ran, so model servers do not pile up."""
    if isinstance(item, ScenarioItem) and getattr(nextitem, "run_holder", None) is not item.run_holder:
        run = item.run_holder.pop("run", None)
        if run is not None:
            run.cleanup()
            session = item.config.stash[session_key]
            if run in session.runs:
                session.runs.remove(run)
