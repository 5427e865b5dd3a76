"""The exact versions behind an image in this sandbox: which Python and which framework packages serve it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sandbox.images import Image

PACKAGES = {
    "tf": ("tensorflow-cpu", "tensorflow", "keras", "numpy"),
    "torch": ("torch", "torchvision", "torchserve", "numpy"),
}
RUNTIME = {
    "tf": "TF Serving-compatible server (sandbox.runtimes.tfserving) on the image's TensorFlow",
    "torch": "TorchServe, configured like the prebuilt image (service_envelope=json)",
}
_SCRIPT = (
    "import importlib.metadata as m, json, platform, sys\n"
    "found = {'python': platform.python_version()}\n"
    "for name in sys.argv[1:]:\n"
    "    try: found[name] = m.version(name)\n"
    "    except m.PackageNotFoundError: pass\n"
    "print(json.dumps(found))\n"
)


def runtime_python(image: Image) -> Path:
    """The interpreter the image's model server runs on: the image's runtime (created first when missing)."""
    from sandbox.runtimes.registry import RUNTIMES

    return RUNTIMES[image.framework].prepare(image, lambda msg: print(msg, file=sys.stderr))


def _java() -> str:
    """The first line of ``java -version`` (TorchServe's frontend runs on it)."""
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"not found ({exc})"
    return (done.stderr or done.stdout).strip().splitlines()[0] if (done.stderr or done.stdout).strip() else "?"


def versions(image: Image) -> dict[str, str]:
    """``{"image": ..., "runtime": ..., "python": "3.11.7", "tensorflow-cpu": "2.18.1", ...}``."""
    found = {
        "image": image.name,
        "image framework": f"{image.framework} {image.version}",
        "runtime": RUNTIME[image.framework],
    }
    try:
        python = runtime_python(image)
        out = subprocess.run(
            [str(python), "-c", _SCRIPT, *PACKAGES[image.framework]],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        found.update(json.loads(out))
        found["interpreter"] = str(python)
        if image.framework == "torch":
            found["java"] = _java()
    except Exception as exc:  # the report still says what it could not find out
        found["error"] = f"could not read the runtime's versions: {type(exc).__name__}: {str(exc)[:200]}"
    return found
