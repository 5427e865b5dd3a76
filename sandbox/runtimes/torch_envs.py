"""The PyTorch runtimes: each PyTorch image's own Python, torch, torchvision and TorchServe worker packages.

GDC's PyTorch 2.0-2.4 prebuilt images run Python 3.9 with the torch of the image's name and the matching
torchvision (which TorchServe's built-in ``image_classifier``/``object_detector``/``image_segmenter`` need).
PyPI has only CUDA builds of these torch versions for x86_64 Linux; they import and run on the CPU. Their
nvidia-* dependencies cannot be skipped: ``libtorch_cuda.so`` and ``libtorch_python.so`` link
``libcudart``, ``libcublas``, ``libcudnn``... directly, and ``import torch`` fails without them (measured:
``ValueError: libcublas.so.*[0-9] not found in the system path``).
"""

from __future__ import annotations

from sandbox.runtimes import envs

TORCHSERVE = "torchserve==0.12.0"
#: torch minor -> (torch, torchvision) pins; torchvision 0.19 goes with torch 2.4, 0.16 with torch 2.1.
PINS: dict[str, tuple[str, str]] = {
    "2.4": ("2.4.1", "0.19.1"),
    "2.1": ("2.1.2", "0.16.2"),
}
PYTHON = "3.9"
#: The rest of what handlers can import (the checker's IMAGE_MODULES lists the modules): TorchServe's built-in
#: vision and text handlers import captum (which pulls matplotlib).
EXTRA = ("captum==0.7.0", "matplotlib==3.9.4", "numpy==1.26.4", "pillow==10.4.0", "pyyaml==6.0.2", "requests==2.32.3")
VERIFY = (
    "import platform, torch, torchvision, ts, captum.attr\n"
    "y = torch.nn.Linear(3, 2)(torch.ones(1, 3))\n"
    "assert tuple(y.shape) == (1, 2) and not torch.cuda.is_available()\n"
    "print(torch.__version__, torchvision.__version__, platform.python_version())\n"
)


class TorchRuntimeUnavailable(envs.RuntimeUnavailable):
    """No runtime exists for this torch version."""


def env_spec(torch_version: str) -> envs.EnvSpec:
    """The environment of the PyTorch image whose torch is ``torch_version`` (``"2.4"``)."""
    minor = ".".join(torch_version.split(".")[:2])
    if minor not in PINS:
        raise TorchRuntimeUnavailable(
            f"no runtime for torch {torch_version}: the sandbox has PyTorch runtimes for "
            f"{', '.join(sorted(PINS))} (the GDC pytorch-cpu.2-4 and pytorch-cpu.2-1 images)"
        )
    torch, vision = PINS[minor]
    return envs.EnvSpec(
        key=f"torch-{minor}",
        title=f"PyTorch {torch} + torchvision {vision} on Python {PYTHON}",
        python=PYTHON,
        packages=(f"torch=={torch}", f"torchvision=={vision}", TORCHSERVE, *EXTRA),
        size_note="about 2.8 GB from PyPI (torch's CUDA build and its nvidia-* libraries; 5 GB on disk, 3-8 min)",
        verify=VERIFY,
    )
