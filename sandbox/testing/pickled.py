"""Whole-model pickles (``torch.save(model)``) of a class that lives in a module file shipped next to them.

The pickle names the class by its module (``model.Net``), as a training script that did ``from model import Net``
would write it; the module file goes into the archive so that the handler's ``torch.load`` can import it.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

#: A Linear(4 -> 2) wrapped in an nn.Module subclass: the class a whole-model pickle references.
LINEAR_NET = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)
"""


def save_whole_model(folder: Path, module_name: str, source: str = LINEAR_NET, seed: int = 7) -> tuple[Path, Path]:
    """Write ``module_name.py`` and ``model.pt`` (``torch.save`` of its ``Net()``, seeded) into ``folder``."""
    import torch

    module_file = folder / f"{module_name}.py"
    module_file.write_text(textwrap.dedent(source).lstrip())
    spec = importlib.util.spec_from_file_location(module_name, module_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get(module_name)
    sys.modules[module_name] = module  # what `from model import Net` in the training script does
    try:
        spec.loader.exec_module(module)
        torch.manual_seed(seed)
        torch.save(module.Net().eval(), str(folder / "model.pt"))
    finally:
        if saved is None:
            sys.modules.pop(module_name, None)
        else:
            sys.modules[module_name] = saved
    return module_file, folder / "model.pt"
