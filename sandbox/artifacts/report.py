"""The checker's result: diagnostics plus the framework and image they were judged against."""

from __future__ import annotations

from typing import Any

from sandbox.diagnostics import Diagnostic
from sandbox.images import Framework, Image

_ORDER = {"error": 0, "warning": 1, "info": 2}


class Report:
    """What :func:`sandbox.artifacts.check_artifact` found. ``ok`` is True when no diagnostic is an error."""

    def __init__(
        self, image: Image, framework: Framework | None = None, diagnostics: list[Diagnostic] | None = None
    ) -> None:
        self.image = image
        self.framework = framework
        self.diagnostics = diagnostics if diagnostics is not None else []

    def __repr__(self) -> str:
        return f"Report(image={self.image.name!r}, framework={self.framework!r}, codes={self.codes()!r})"

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]

    def sort(self) -> None:
        """Errors first, then warnings, then infos; stable otherwise."""
        self.diagnostics.sort(key=lambda d: _ORDER.get(d.severity, 3))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "framework": self.framework,
            "image": self.image.name,
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }

    def render_text(self) -> str:
        blocks = [d.render() for d in self.diagnostics]
        counts = {s: sum(d.severity == s for d in self.diagnostics) for s in ("error", "warning", "info")}
        summary = ", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items() if n)
        verdict = "ok" if self.ok else "will not serve"
        blocks.append(
            f"{verdict}: {summary or 'no problems found'} (framework {self.framework or 'unknown'}, "
            f"image {self.image.name})"
        )
        return "\n\n".join(blocks)
