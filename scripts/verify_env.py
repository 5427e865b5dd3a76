"""Fail the install if pip pulled a CUDA torch or a second TensorFlow (see shared environment notes)."""

from __future__ import annotations

import importlib.metadata as md
import sys


def main() -> int:
    problems = []
    installed = {d.metadata["Name"].lower().replace("_", "-"): d.version for d in md.distributions()}
    tf_dists = [name for name in installed if name in ("tensorflow", "tensorflow-cpu", "tensorflow-intel")]
    if len(tf_dists) != 1:
        problems.append(f"expected exactly one TensorFlow distribution, found {tf_dists or 'none'}")
    if any(name.startswith("nvidia-") for name in installed):
        problems.append("CUDA packages (nvidia-*) are installed: a CUDA torch was pulled; pin torch==2.13.0")
    torch_version = installed.get("torch", "")
    if not torch_version.startswith("2.13.0"):
        problems.append(f"torch {torch_version or 'missing'} installed; expected the CPU build of 2.13.0")
    for problem in problems:
        print(f"environment check failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
