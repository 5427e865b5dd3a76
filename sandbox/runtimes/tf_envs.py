"""The TensorFlow runtimes: one Python environment per TF version (the native stand-in for one image per version).

``python_for("2.18", cache)`` is the current interpreter when TF 2.18 is installed here; other
versions get a virtualenv ``cache/tf-X.Y`` (see :mod:`sandbox.runtimes.envs`) created once with pinned
wheels from PyPI, then reused. Versions with no wheel for this Python (e.g. 2.6) raise
:class:`TFRuntimeUnavailable`: use the Docker Compose path, which runs the real ``tensorflow/serving`` image.

Example::

    >>> python_for("2.14", Path(".sandbox/runtimes"))   # doctest: +SKIP
    PosixPath('.sandbox/runtimes/tf-2.14/bin/python')
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

from sandbox.runtimes import envs

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
_VERIFY = "import tensorflow as tf; assert float(tf.reduce_sum(tf.ones([2, 3]))) == 6.0; print(tf.__version__)"


class TFRuntimeUnavailable(envs.RuntimeUnavailable):
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


def env_spec(tf_version: str) -> envs.EnvSpec | None:
    """The environment of TF ``tf_version``; None when the sandbox's own interpreter already runs it."""
    minor = _minor(tf_version)
    here = installed_tf_version()
    if here is not None and _minor(here) == minor:
        return None
    _check_wheel_exists(minor)
    deps, serving_api = PINS[minor]
    return envs.EnvSpec(
        key=f"tf-{minor}",
        title=f"TensorFlow {minor}",
        python=None,
        packages=tuple(deps),
        no_deps=(serving_api,),
        size_note="about 0.3 GB from PyPI (1.3 GB on disk, about 2 min)",
        verify=_VERIFY,
    )


def python_for(tf_version: str, cache_dir: Path, progress: envs.Progress = print) -> Path:
    """The interpreter that runs the TF Serving-compatible server for ``tf_version`` (``"2.14"``, ``"2.18.1"``)."""
    spec = env_spec(tf_version)
    if spec is None:
        return Path(sys.executable)
    return envs.ensure(spec, Path(cache_dir), progress)


if __name__ == "__main__":  # python -m sandbox.runtimes.tf_envs 2.14 [CACHE_DIR]
    print(python_for(sys.argv[1], Path(sys.argv[2]) if len(sys.argv) > 2 else envs.cache_dir()))
