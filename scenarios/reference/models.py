"""Builders of the reference scenarios: tiny models exported the way GDC's prebuilt images want them.

Each builder writes the version folder into ``out_dir`` and returns the framework's own predict
function, so the scenario can compare what the sandbox serves with what the framework computes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.export import export_tensorflow, export_torch
from sandbox.testing.scenario import Built
from sandbox.testing.scratch import private_keras_home

private_keras_home()


def tf_dense_regressor(out_dir: Path) -> Built:
    """Keras 3 Dense(4 -> 3 -> 2) exported with ``model.export`` (serve tag + serving_default)."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(2)])
    export_tensorflow(model, out_dir)

    def reference(instances: Any) -> Any:
        return model(np.asarray(instances, dtype="float32")).numpy().tolist()

    return Built(out_dir, reference)


def torch_linear(out_dir: Path) -> Built:
    """TorchScript Linear(4 -> 2) + ReLU archived as model.mar with the built-in base_handler."""
    import torch

    torch.manual_seed(7)
    module = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.ReLU()).eval()
    export_torch(module, out_dir, example_inputs=torch.zeros(1, 4))

    def reference(instances: Any) -> Any:
        with torch.no_grad():
            return module(torch.as_tensor(instances, dtype=torch.float32)).tolist()

    return Built(out_dir, reference)
