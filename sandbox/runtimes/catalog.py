"""Which runtime environment each prebuilt image runs on: the engine behind ``gdc-sandbox runtimes``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sandbox.images import IMAGES, Image, resolve
from sandbox.runtimes import envs
from sandbox.runtimes.registry import RUNTIMES


@dataclass
class Runtime:
    """One environment and the images (CPU and GPU twins) that run on it."""

    spec: envs.EnvSpec | None
    """None: the image runs on the sandbox's own interpreter (nothing to install)."""
    images: list[Image] = field(default_factory=list)
    problem: str = ""
    """Why no native runtime can exist for these images (then ``spec`` is None)."""

    @property
    def name(self) -> str:
        return self.spec.key if self.spec else "(built in)" if not self.problem else "(none)"

    def state(self) -> str:
        if self.problem:
            return "unavailable"
        if self.spec is None:
            return "built in"
        return "installed" if envs.installed(self.spec) else "not installed"


def runtimes(names: Sequence[str] = ()) -> list[Runtime]:
    """The runtimes of the named images (all images by default), one entry per environment."""
    chosen = [resolve(n) for n in names] if names else list(IMAGES.values())
    found: dict[str, Runtime] = {}
    for image in chosen:
        try:
            spec = RUNTIMES[image.framework].env_spec(image)
            key, problem = (spec.key if spec else "(built in)"), ""
        except envs.RuntimeUnavailable as exc:
            spec, key, problem = None, f"(none: {image.name})", str(exc)
        found.setdefault(key, Runtime(spec, problem=problem)).images.append(image)
    return list(found.values())
