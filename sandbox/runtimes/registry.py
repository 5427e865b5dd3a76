"""The explicit runtime registry: framework -> the pod class that serves it."""

from __future__ import annotations

from sandbox.runtimes.base import ModelServerPod
from sandbox.runtimes.tensorflow import TFServingPod
from sandbox.runtimes.torchserve import TorchServePod

RUNTIMES: dict[str, type[ModelServerPod]] = {
    "tf": TFServingPod,
    "torch": TorchServePod,
}
