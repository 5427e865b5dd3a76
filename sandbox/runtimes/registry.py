"""The explicit runtime registry: backend -> framework -> the pod class that serves it."""

from __future__ import annotations

from sandbox.runtimes.base import ModelServerPod
from sandbox.runtimes.container import TFServingContainer, TorchServeContainer
from sandbox.runtimes.tensorflow import TFServingPod
from sandbox.runtimes.torchserve import TorchServePod

RUNTIMES: dict[str, type[ModelServerPod]] = {
    "tf": TFServingPod,
    "torch": TorchServePod,
}
"""The native backend: one local model-server process per replica."""

CONTAINER_RUNTIMES: dict[str, type[ModelServerPod]] = {
    "tf": TFServingContainer,
    "torch": TorchServeContainer,
}
"""The Docker Compose backend: one container per replica."""

BACKENDS: dict[str, dict[str, type[ModelServerPod]]] = {"native": RUNTIMES, "compose": CONTAINER_RUNTIMES}
