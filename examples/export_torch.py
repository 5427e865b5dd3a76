"""Archive a tiny PyTorch model as ``model.mar``: ``python examples/export_torch.py ./my_torch_export``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from sandbox.export import export_torch


def main(out: str) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    mar = export_torch(model, Path(out), example_inputs=torch.zeros(1, 4))  # --model-name model, base_handler
    print(f"TorchServe archive written to {mar}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "my_torch_export")
