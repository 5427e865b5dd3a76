"""The scenario file format: build a tiny model, upload, (check,) deploy, then predict and compare.

```yaml
scenario: tf-dense-regressor
image: tf2-cpu.2-18
build: models.py:tf_dense_regressor   # function(out_dir: Path) -> Built, path relative to this file
check:                                # optional: the preflight codes expected (all must appear)
  codes: [tf.no-serve-tag]
deploy:
  force: false                        # true: skip the preflight gate (reproduce the server's failure)
  expect: ready                       # or: failed
  error_contains: "..."               # with expect: failed - text the model server's failure must contain
cases:
  - name: batch-of-two
    instances: [[1, 2, 3, 4], [0, 0, 0, 0]]
    expect: {status: 200, match_reference: true, atol: 1.0e-5}
```
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseExpect(_Strict):
    status: int = 200
    match_reference: bool = False
    """Compare predictions with the framework's own output for the same instances; with an error status,
    the error must carry the message the framework raises in-process (its wording differs by CPU)."""
    atol: float = 1e-5
    rtol: float = 1e-5
    predictions: Any = None
    """Literal expected predictions (compared with the tolerances)."""
    error_contains: str | None = None


class Case(_Strict):
    name: str
    instances: Any = None
    body: Any = None
    """A raw request body (JSON value) instead of ``instances``; for malformed-request cases."""
    expect: CaseExpect = Field(default_factory=CaseExpect)


class CheckExpect(_Strict):
    codes: list[str] = Field(default_factory=list)
    ok: bool | None = None


class DeployExpect(_Strict):
    force: bool = False
    expect: Literal["ready", "failed"] = "ready"
    error_contains: list[str] | str | None = None
    replicas: int = 1


class Scenario(_Strict):
    scenario: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    description: str = ""
    image: str
    build: str
    markers: list[str] = Field(default_factory=list)
    check: CheckExpect | None = None
    deploy: DeployExpect = Field(default_factory=DeployExpect)
    cases: list[Case] = Field(default_factory=list)


@dataclass
class Built:
    """What a builder returns: the artifact folder and, optionally, the framework's own predict function."""

    artifact: Path
    reference: Callable[[Any], Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def load_builder(scenario_file: Path, spec: str) -> Callable[[Path], Built]:
    """Resolve ``file.py:function`` relative to the scenario file."""
    filename, _, function = spec.partition(":")
    path = (scenario_file.parent / filename).resolve()
    module_name = f"_gdc_scenario_builders_{abs(hash(path))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None or not path.exists():
        raise FileNotFoundError(f"builder file {path} not found (from build: {spec!r})")
    import sys

    module = sys.modules.get(module_name)
    if module is None:
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
    builder = getattr(module, function, None)
    if builder is None:
        raise AttributeError(f"{path} has no function {function!r}")
    return builder  # type: ignore[no-any-return]
