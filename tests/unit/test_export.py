"""The export helpers take paths as users write them, a str as well as a Path (the rest of the suite uses Paths)."""

from __future__ import annotations

from pathlib import Path

from sandbox.artifacts import check_artifact
from sandbox.images import resolve


def test_export_tensorflow_takes_a_str_path(tmp_path: Path) -> None:
    import keras

    from sandbox.export import export_tensorflow

    target = tmp_path / "my_model" / "1"
    written = export_tensorflow(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), str(target))
    assert written == target and (target / "saved_model.pb").is_file()
    assert check_artifact(target, resolve("tf2-cpu.2-18")).ok


def test_export_torch_takes_a_str_path(tmp_path: Path) -> None:
    import torch

    from sandbox.export import export_torch

    target = tmp_path / "my_model" / "1"
    written = export_torch(torch.nn.Linear(3, 2), str(target))
    assert written == target / "model.mar" and written.is_file()
    assert check_artifact(target, resolve("pytorch-cpu.2-4")).ok
