"""Which container image runs each GDC prebuilt image (and MinIO) on the Docker Compose backend.

Defaults are the pinned public images the prebuilt containers are built on. Each one can be replaced
with ``GDC_SANDBOX_IMAGE_<NAME>``, ``NAME`` being the GDC image name in capitals with ``-`` and ``.``
as ``_`` (``GDC_SANDBOX_IMAGE_TF2_CPU_2_18``, ``GDC_SANDBOX_IMAGE_PYTORCH_CPU_2_4``) or ``MINIO``, so
that users with GDC's own images mirrored into their registry (or the stand-ins of
:mod:`sandbox.standins`) run those.

GPU image names map to the CPU builds: the sandbox serves every image on the CPU.
"""

from __future__ import annotations

import os
import re

MINIO = "minio"

UPSTREAM: dict[str, str] = {
    "tf2-cpu.2-18": "tensorflow/serving:2.18.0",
    "tf2-gpu.2-18": "tensorflow/serving:2.18.0",
    "tf2-cpu.2-14": "tensorflow/serving:2.14.1",
    "tf2-gpu.2-14": "tensorflow/serving:2.14.1",
    "tf2-cpu.2-6": "tensorflow/serving:2.6.0",
    "pytorch-cpu.2-4": "pytorch/torchserve:0.12.0-cpu",
    "pytorch-gpu.2-4": "pytorch/torchserve:0.12.0-cpu",
    "pytorch-cpu.2-1": "pytorch/torchserve:0.9.0-cpu",
    "pytorch-gpu.2-1": "pytorch/torchserve:0.9.0-cpu",
    MINIO: "minio/minio:RELEASE.2025-04-22T22-12-26Z",
}


def override_variable(name: str) -> str:
    """``tf2-cpu.2-18`` -> ``GDC_SANDBOX_IMAGE_TF2_CPU_2_18``."""
    return "GDC_SANDBOX_IMAGE_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def container_image(name: str) -> str:
    """The image reference that runs GDC image ``name`` (or ``minio``): the override variable, else the pin."""
    return os.environ.get(override_variable(name)) or UPSTREAM[name]


def overridden(name: str) -> bool:
    return bool(os.environ.get(override_variable(name)))
