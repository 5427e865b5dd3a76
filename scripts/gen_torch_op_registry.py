"""Write the aten operator names a torch build registers, one per line, to sandbox/data/torch_ops/<X.Y>.txt.

Run it with each runtime's interpreter (and the sandbox's own torch for the newest list)::

    ~/.cache/gdc-sandbox/runtimes/torch-2.4/bin/python scripts/gen_torch_op_registry.py
    .venv/bin/python scripts/gen_torch_op_registry.py
"""

import os

import torch

minor = ".".join(torch.__version__.split("+")[0].split(".")[:2])
names = sorted({s.name.split("::", 1)[1] for s in torch._C._jit_get_all_schemas() if s.name.startswith("aten::")})
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sandbox", "data", "torch_ops", minor + ".txt")
with open(out, "w") as fh:
    fh.write("\n".join(names) + "\n")
print(f"{len(names)} aten ops of torch {torch.__version__} -> {os.path.normpath(out)}")
