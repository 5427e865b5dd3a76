"""Per-image aten operator lists, shipped as data (``sandbox/data/torch_ops/<version>.txt``).

Generated from each runtime's torch by ``scripts/gen_torch_op_registry.py``; the newest file is the sandbox's
own torch. An operator listed for a newer torch and missing from the image's list is one the image's
TorchScript loader refuses: ``Unknown builtin op: aten::X``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "torch_ops"


@cache
def aten_ops(version: str) -> frozenset[str] | None:
    """The aten operators of torch ``version`` (``"2.4"``), or None when no list ships for it."""
    path = DATA / f"{'.'.join(version.split('.')[:2])}.txt"
    return frozenset(path.read_text().split()) if path.exists() else None


@cache
def known_ops() -> frozenset[str]:
    """Every aten operator of every shipped list."""
    return frozenset().union(*(frozenset(p.read_text().split()) for p in DATA.glob("*.txt")))


def missing_ops(used: set[str], version: str) -> list[str]:
    """The aten operators among ``used`` that torch ``version`` does not register (empty when unknown)."""
    image = aten_ops(version)
    if image is None:
        return []
    return sorted(op for op in used if op in known_ops() and op not in image)
