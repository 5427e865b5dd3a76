"""The GDC prebuilt serving images and what runs them in the sandbox."""

# No `from __future__ import annotations` here: typing.NamedTuple would compile() each string annotation,
# and a process's first compile() costs `gdc-sandbox check` a few milliseconds.
import re
from typing import Literal, NamedTuple

from sandbox.errors import UsageError

Framework = Literal["tf", "torch"]


def version_tuple(version: str) -> tuple[int, ...]:
    """``"2.18.1"`` -> ``(2, 18, 1)``; parts that are not plain numbers (``rc1``) are skipped."""
    return tuple(int(p) for p in version.split(".") if p.isdigit())


class Image(NamedTuple):
    """One prebuilt image: the framework it serves and that framework's version."""

    name: str
    framework: Framework
    version: str
    """Framework version inside the image (``2.18`` for TensorFlow, ``2.4`` for PyTorch)."""
    accelerator: bool = False
    deprecated: bool = False
    native: bool = True
    """False when no wheel of the framework exists for this Python, so the sandbox cannot serve it natively."""
    python: str = ""
    """The Python that runs user code in the image (handlers, model files): ``3.9`` for the PyTorch 2.x images."""

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return version_tuple(self.version)

    @property
    def python_tuple(self) -> tuple[int, int]:
        """``(3, 9)``; images that run no user Python code answer the newest grammar the checker knows."""
        parts = version_tuple(self.python)
        return (parts[0], parts[1]) if len(parts) >= 2 else (3, 11)

    def warnings(self) -> list[str]:
        notes = []
        if self.deprecated:
            notes.append(
                f"image {self.name} is deprecated on GDC; move to {newest(self.framework, self.accelerator).name}"
            )
        if self.accelerator:
            notes.append(f"image {self.name} is a GPU image; the sandbox serves it on the CPU")
        return notes


IMAGES: dict[str, Image] = {
    image.name: image
    for image in (
        Image("tf2-cpu.2-18", "tf", "2.18"),
        Image("tf2-gpu.2-18", "tf", "2.18", accelerator=True),
        Image("tf2-cpu.2-14", "tf", "2.14"),
        Image("tf2-gpu.2-14", "tf", "2.14", accelerator=True),
        Image("tf2-cpu.2-6", "tf", "2.6", native=False),
        Image("pytorch-cpu.2-4", "torch", "2.4", python="3.9"),
        Image("pytorch-gpu.2-4", "torch", "2.4", accelerator=True, python="3.9"),
        Image("pytorch-cpu.2-1", "torch", "2.1", deprecated=True, python="3.9"),
        Image("pytorch-gpu.2-1", "torch", "2.1", accelerator=True, deprecated=True, python="3.9"),
    )
}

_URI = re.compile(r"^(?:[\w.-]+(?::\d+)?/)*(?P<name>[\w.-]+?)(?::[\w.-]+)?$")


def resolve(image: str) -> Image:
    """Map a short name or a full image URI (``.../prediction/tf2-cpu.2-18:latest``) to an :class:`Image`."""
    match = _URI.match(image.strip())
    name = match.group("name") if match else image
    if name in IMAGES:
        return IMAGES[name]
    raise UsageError(
        f"unknown prebuilt image {image!r}",
        code="image.unknown",
        hint="use one of: " + ", ".join(IMAGES),
    )


def newest(framework: Framework, accelerator: bool = False) -> Image:
    """The newest supported image for a framework, CPU by default (what GDC users get) or GPU."""
    candidates = [
        i
        for i in IMAGES.values()
        if i.framework == framework and i.accelerator == accelerator and not i.deprecated and i.native
    ]
    return max(candidates, key=lambda i: i.version_tuple)


def nearest_native(image: Image) -> Image:
    """The image the sandbox can run that is closest to ``image``: the oldest native one at or above its version."""
    natives = [i for i in IMAGES.values() if i.framework == image.framework and i.native and not i.accelerator]
    newer = [i for i in natives if i.version_tuple >= image.version_tuple]
    return min(newer, key=lambda i: i.version_tuple) if newer else max(natives, key=lambda i: i.version_tuple)
