"""Judge a serialized model file against how the handler will load it on the image's torch."""

from __future__ import annotations

from sandbox.artifacts import handler_ast, torch_ops, torch_pickle
from sandbox.diagnostics import Diagnostic, Severity, make
from sandbox.images import Image, version_tuple

WEIGHTS_ONLY_DEFAULT_FROM = (2, 6)
"""torch.load switched its ``weights_only`` default to True in torch 2.6."""


def judge(
    t: torch_pickle.TorchFile,
    serialized: str,
    model_file: str,
    base: bool,
    handler: handler_ast.ModuleInfo | None,
    image: Image,
    where: str,
    out: list[Diagnostic],
) -> None:
    if t.kind == "unknown" and base:
        out.append(
            make(
                "mar.model-file-mismatch",
                f"{serialized} is not a torch file ({t.note}): 'PytorchStreamReader failed reading zip archive'",
                path=where,
            )
        )
    if base and t.kind == "torchscript" and model_file:
        out.append(
            make(
                "mar.model-file-mismatch",
                f"{serialized} is TorchScript but a modelFile ({model_file}) is "
                "set: the base handler will torch.load it as a state_dict and fail",
                path=where,
            )
        )
    if base and t.kind == "torchscript" and not model_file and not serialized.endswith(".pt"):
        out.append(
            make(
                "mar.model-file-mismatch",
                f"{serialized} is TorchScript but not named *.pt: the base "
                "handler loads TorchScript only from a .pt file",
                path=where,
            )
        )
    if base and t.kind in ("eager-zip", "legacy-pickle") and not model_file:
        out.append(
            make(
                "mar.model-file-mismatch",
                f"{serialized} is a torch.save pickle, not TorchScript, and there "
                "is no modelFile: torch.jit.load fails with 'PytorchStreamReader failed locating file "
                "constants.pkl'",
                path=where,
            )
        )
    if base and t.kind in ("eager-zip", "legacy-pickle") and model_file and not t.is_state_dict:
        out.append(
            make(
                "mar.model-file-mismatch",
                f"{serialized} pickles whole objects ({t.custom_globals[0]}), "
                "not a state_dict: the base handler calls model.load_state_dict(torch.load(...))",
                path=where,
            )
        )
    if t.main_globals:
        out.append(
            make(
                "mar.pickle-main",
                f"{serialized} references {', '.join(t.main_globals[:3])}: classes "
                "defined in the training script's __main__ cannot be found when loading",
                path=where,
            )
        )
    if t.kind in ("eager-zip", "legacy-pickle") and t.custom_globals and not t.main_globals:
        found = _weights_only(t, serialized, base, handler, image)
        out.extend(make("mar.weights-only", message, path=where, severity=sev) for message, sev in found)
    loads_unmapped = handler is not None and any(not mapped for _, mapped, _ in handler.torch_loads)
    if t.cuda and (loads_unmapped or (t.kind == "torchscript" and not base)):
        out.append(
            make(
                "mar.cuda-tensors",
                f"{serialized} holds tensors saved on CUDA and the handler loads "
                "without map_location: on the CPU image this fails with 'Attempting to deserialize object on "
                "a CUDA device'",
                path=where,
            )
        )
    if t.training_calls:
        out.append(
            make(
                "mar.training-mode",
                f"{serialized} was traced in training mode: its code calls {', '.join(t.training_calls)} with "
                "training=True baked in, which the handler's model.eval() cannot undo; dropout stays on and "
                "batch norm normalizes each request by its own batch",
                path=where,
            )
        )
    _version(t, serialized, image, where, out)


def _version(t: torch_pickle.TorchFile, serialized: str, image: Image, where: str, out: list[Diagnostic]) -> None:
    """What the image's torch makes of a file written by another torch: its version record, operators, markers."""
    missing = torch_ops.missing_ops(t.ops, image.version) if t.kind == "torchscript" else []
    if t.version is not None and t.version > torch_pickle.MAX_SCRIPT_VERSION:
        out.append(
            make(
                "mar.torch-version",
                f"{serialized} has file format version {t.version}; torch "
                f"{image.version} reads up to {torch_pickle.MAX_SCRIPT_VERSION}",
                path=where,
                severity="error",
                image_version=image.version,
            )
        )
    elif missing:
        out.append(
            make(
                "mar.torch-version",
                f"{serialized} calls {', '.join('aten::' + op for op in missing[:3])}, which torch {image.version} "
                f"does not have: loading fails with 'Unknown builtin op: aten::{missing[0]}'",
                path=where,
                severity="error",
                image_version=image.version,
            )
        )
    elif t.min_torch and version_tuple(t.min_torch[0]) > image.version_tuple:
        out.append(
            make(
                "mar.torch-version",
                f"{serialized} has a '{t.min_torch[1]}' record, written by torch >= {t.min_torch[0]}; torch "
                f"{image.version} (the image) ignores the newer records and reads it",
                path=where,
                severity="info",
                image_version=image.version,
                hint="nothing to do unless the model uses operators newer than the image's torch",
            )
        )


def _weights_only(
    t: torch_pickle.TorchFile, serialized: str, base: bool, handler: handler_ast.ModuleInfo | None, image: Image
) -> list[tuple[str, Severity]]:
    """A pickle of custom objects, and how the loader's ``torch.load`` treats it on the image's torch."""
    objects = ", ".join(t.custom_globals[:3])
    calls = [(line, wo) for line, _, wo in handler.torch_loads] if handler is not None and not base else []
    strict = [line for line, wo in calls if wo is True]
    default = base or any(wo is None for _, wo in calls)
    if strict:
        return [(f"{serialized} pickles custom objects ({objects}) and the handler calls torch.load(..., "
                 f"weights_only=True) (line {strict[0]}): every torch refuses them ('Weights only load failed')",
                 "error")]
    if default and image.version_tuple >= WEIGHTS_ONLY_DEFAULT_FROM:
        return [(f"{serialized} pickles custom objects ({objects}): torch>=2.6 torch.load(weights_only=True) "
                 f"refuses them (image torch {image.version})", "error")]
    if default:
        return [(f"{serialized} pickles custom objects ({objects}): torch {image.version} (the image) loads them "
                 "with a FutureWarning, but torch>=2.6 torch.load(weights_only=True) refuses them "
                 f"(image torch {image.version})", "warning")]
    return []  # the handler passes weights_only=False: every torch loads it the same way
