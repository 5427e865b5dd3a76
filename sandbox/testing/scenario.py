"""The scenario file format: get an artifact, upload, (check,) deploy, then predict and compare.

```yaml
scenario: tf-dense-regressor          # id: lowercase letters, digits, '-'
image: tf2-cpu.2-18                   # or images: [tf2-cpu.2-14, tf2-cpu.2-18] (one pytest item per image)
build: models.py:tf_dense_regressor   # function(out_dir: Path) -> Built, path relative to this file
# artifact: my_export/                # instead of build: a folder, .tar.gz/.tgz/.zip, .mar, or s3://B/M/V
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

The README's "Testing your own models" section documents every key.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sandbox.errors import UsageError


class ScenarioError(UsageError):
    """A scenario file that cannot be run as written; rendered as one line naming the file and the key."""

    code = "scenario.invalid"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseExpect(_Strict):
    status: int = 200
    match_reference: bool = False
    """Compare predictions with the framework's own output for the same instances (needs ``build:``); with an
    error status, the error must carry the message the framework raises in-process (its wording differs by CPU)."""
    atol: float = 1e-5
    rtol: float = 1e-5
    predictions: Any = None
    """Literal expected predictions (compared with the tolerances)."""
    predictions_file: str | None = None
    """A JSON file holding the expected predictions, relative to the scenario file."""
    error_contains: str | None = None

    @model_validator(mode="after")
    def _one_source_of_predictions(self) -> CaseExpect:
        if self.predictions is not None and self.predictions_file is not None:
            raise ValueError("give predictions or predictions_file, not both")
        return self


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
    image: str | None = None
    images: list[str] = Field(default_factory=list)
    """Run the whole scenario once per image, each case a pytest item with the image in its id."""
    build: str | None = None
    artifact: str | None = None
    """An existing artifact instead of ``build``: a folder, archive or ``.mar`` relative to this file, or s3://."""
    markers: list[str] = Field(default_factory=list)
    check: CheckExpect | None = None
    deploy: DeployExpect = Field(default_factory=DeployExpect)
    cases: list[Case] = Field(default_factory=list)

    @model_validator(mode="after")
    def _exactly_one(self) -> Scenario:
        if (self.build is None) == (self.artifact is None):
            raise ValueError("give exactly one of build: (FILE.py:FUNCTION) or artifact: (PATH or s3://...)")
        if bool(self.image) == bool(self.images):
            raise ValueError("give exactly one of image: IMAGE or images: [IMAGE, ...]")
        return self

    @property
    def all_images(self) -> list[str]:
        return list(self.images) if self.images else [str(self.image)]


@dataclass
class Built:
    """What a builder returns: the artifact folder and, optionally, the framework's own predict function."""

    artifact: Path
    reference: Callable[[Any], Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def load_scenario(path: Path, raw: Any) -> Scenario:
    """Validate a parsed YAML document; every problem becomes one line naming the file, the key and what is allowed."""
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a YAML mapping with the keys {_allowed(Scenario)}")
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError("\n".join(_describe(path, error) for error in exc.errors())) from None


def _describe(path: Path, error: Any) -> str:
    loc = tuple(error["loc"])
    key = _dotted(loc)
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key '{key}'; allowed keys here: {_allowed(_model_at(loc[:-1]))}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{path}: '{key}' is required; allowed keys here: {_allowed(_model_at(loc[:-1]))}"
    given = f"{error['input']!r} " if key and not isinstance(error.get("input"), dict | list) else ""
    return f"{path}: {key + ': ' if key else ''}{given}{message}"


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel]:
    """The model class that the (field-name, index, ...) path ``loc`` points into."""
    model: type[BaseModel] = Scenario
    for part in loc:
        if isinstance(part, int) or part not in model.model_fields:
            continue
        inner = _model_in(model.model_fields[part].annotation)
        if inner is None:
            break
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _allowed(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


def load_builder(scenario_file: Path, spec: str) -> Callable[[Path], Built]:
    """Resolve ``file.py:function`` relative to the scenario file; a wrong spec is a one-line ScenarioError."""
    filename, _, function = spec.partition(":")
    where = f"{scenario_file}: build: {spec!r}"
    if not filename.endswith(".py") or not function:
        raise ScenarioError(f"{where} must be FILE.py:FUNCTION, e.g. models.py:my_model")
    path = (scenario_file.parent / filename).resolve()
    if not path.is_file():
        raise ScenarioError(f"{where}: there is no {filename} next to the scenario file")
    module_name = f"_gdc_scenario_builders_{abs(hash(path))}"
    module = sys.modules.get(module_name)
    if module is None:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise ScenarioError(f"{where}: importing {filename} failed: {type(exc).__name__}: {exc}") from None
        sys.modules[module_name] = module
    builder = getattr(module, function, None)
    if not callable(builder):
        functions = sorted(
            name
            for name, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == module_name and not name.startswith("_")
        )
        raise ScenarioError(f"{where}: {filename} has no function {function!r}; its functions: {', '.join(functions)}")
    return builder  # type: ignore[no-any-return]
