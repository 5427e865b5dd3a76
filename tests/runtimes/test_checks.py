"""Checks that follow the image's runtime, without deploying: torch.load's weights_only, as the handler calls it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.artifacts import check_artifact
from sandbox.images import resolve

from . import artifacts


@pytest.mark.parametrize(
    ("call", "severity"),
    [
        ("torch.load(path)", "warning"),  # torch 2.4 loads it (FutureWarning); torch >= 2.6 would not
        ("torch.load(path, weights_only=True)", "error"),  # refused on every torch
        ("torch.load(path, weights_only=False)", None),  # loaded the same way everywhere
    ],
)
def test_weights_only_follows_the_handlers_call(tmp_path: Path, call: str, severity: str | None) -> None:
    source = artifacts.PLAIN_LOAD_HANDLER.replace('torch.load(os.path.join(model_dir, "model.pt"))',
                                                  call.replace("path", 'os.path.join(model_dir, "model.pt")'))
    assert (source != artifacts.PLAIN_LOAD_HANDLER) == (call != "torch.load(path)")  # the call was swapped in
    folder = artifacts.whole_pickle_plain_load(tmp_path / "v1", tmp_path / "src", handler_source=source)
    for image in ("pytorch-cpu.2-4", "pytorch-cpu.2-1"):
        found = [d.severity for d in check_artifact(folder, resolve(image)).diagnostics if d.code == "mar.weights-only"]
        assert found == ([severity] if severity else []), image
