"""One Python environment per TensorFlow runtime version (the native stand-in for one image per version).

``python_for("2.18", cache)`` is the current interpreter when TF 2.18 is installed here; other
versions get a virtualenv ``cache/tf-X.Y`` created once with pinned wheels from PyPI, then reused.
Versions with no wheel for this Python (e.g. 2.6) raise :class:`TFRuntimeUnavailable`.

Example::

    >>> python_for("2.14", Path(".sandbox/runtimes"))   # doctest: +SKIP
    PosixPath('.sandbox/runtimes/tf-2.14/bin/python')
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from sandbox.process import tail

STAMP = ".sandbox-runtime.json"

# Pins per TF minor: installed with pip; tensorflow-serving-api goes in with --no-deps (it requires the
# distribution named "tensorflow", which would pull the full GPU build next to tensorflow-cpu).
_OLD_STACK = ["numpy>=1.23.5,<2", "protobuf>=4.21.6,<5", "grpcio>=1.60,<2", "werkzeug>=3,<4"]
PINS: dict[str, tuple[list[str], str]] = {
    "2.14": (["tensorflow-cpu==2.14.1", *_OLD_STACK], "tensorflow-serving-api==2.14.1"),
    "2.15": (["tensorflow-cpu==2.15.1", *_OLD_STACK], "tensorflow-serving-api==2.15.1"),
    "2.16": (["tensorflow-cpu==2.16.2", *_OLD_STACK], "tensorflow-serving-api==2.16.1"),
    "2.17": (["tensorflow-cpu==2.17.1", *_OLD_STACK], "tensorflow-serving-api==2.17.1"),
    "2.18": (["tensorflow-cpu==2.18.1", "numpy>=1.26,<2.1", "protobuf>=5.28,<6", "grpcio>=1.60,<2",
              "werkzeug>=3,<4"], "tensorflow-serving-api==2.18.1"),
}
# Oldest TF minor with a wheel for each Python minor.
_OLDEST_FOR_PYTHON = {(3, 11): (2, 12), (3, 12): (2, 16), (3, 10): (2, 8), (3, 9): (2, 5)}


class TFRuntimeUnavailable(RuntimeError):
    """No native runtime can be made for this TF version here."""


def _minor(version: str) -> str:
    parts = version.strip().split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise ValueError(f"not a TensorFlow version: {version!r} (expected e.g. '2.18')")
    return f"{int(parts[0])}.{int(parts[1])}"


def installed_tf_version() -> str | None:
    """Version of tensorflow-cpu / tensorflow in this interpreter, read from metadata (no TF import)."""
    for dist in ("tensorflow-cpu", "tensorflow", "tensorflow-intel"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _check_wheel_exists(minor: str) -> None:
    major_minor = tuple(int(p) for p in minor.split("."))
    oldest = _OLDEST_FOR_PYTHON.get(sys.version_info[:2], (2, 12))
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    if major_minor < oldest or minor not in PINS:
        raise TFRuntimeUnavailable(
            f"TensorFlow {minor} cannot run natively here: there is no tensorflow-cpu {minor} wheel for Python {py} "
            f"(native runtimes: {', '.join(sorted(PINS))}). Serve the model on the nearest of those instead: "
            "TensorFlow loads SavedModels written by older versions, or run the real image on the Docker Compose "
            "backend (`make sandbox-up BACKEND=compose`, with a Docker engine)."
        )


def _venv_python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def _run(cmd: list[str], log: Path) -> None:
    with open(log, "ab") as fh:
        fh.write(("\n$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise TFRuntimeUnavailable(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail(log, 30)}")


def _create(env_dir: Path, minor: str, progress: Callable[[str], None]) -> None:
    deps, serving_api = PINS[minor]
    if env_dir.exists():
        shutil.rmtree(env_dir)  # an interrupted creation: start over
    log = env_dir.parent / f"tf-{minor}.install.log"
    log.write_text("")
    progress(f"Creating the TensorFlow {minor} runtime in {env_dir} (one time, about a minute)...")
    _run([sys.executable, "-m", "venv", str(env_dir)], log)
    py = str(_venv_python(env_dir))
    progress(f"Installing {', '.join(deps)} (log: {log})...")
    _run([py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *deps], log)
    progress(f"Installing {serving_api} (--no-deps)...")
    _run([py, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--no-deps", serving_api], log)
    stamp = {"tf": minor, "deps": deps, "serving_api": serving_api}
    (env_dir / STAMP).write_text(json.dumps(stamp, indent=1))
    progress(f"TensorFlow {minor} runtime ready: {py}")


def python_for(tf_version: str, cache_dir: Path, progress: Callable[[str], None] = print) -> Path:
    """The interpreter that runs the TF Serving-compatible server for ``tf_version`` (``"2.14"``, ``"2.18.1"``)."""
    minor = _minor(tf_version)
    here = installed_tf_version()
    if here is not None and _minor(here) == minor:
        return Path(sys.executable)
    _check_wheel_exists(minor)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    env_dir = cache_dir / f"tf-{minor}"
    stamp = env_dir / STAMP
    if stamp.exists():
        return _venv_python(env_dir)
    with open(cache_dir / f"tf-{minor}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second creator waits here, then finds the stamp; close unlocks
        if not stamp.exists():
            _create(env_dir, minor, progress)
    return _venv_python(env_dir)


if __name__ == "__main__":  # python -m sandbox.runtimes.tf_envs 2.14 CACHE_DIR
    print(python_for(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else ".sandbox/runtimes")))
