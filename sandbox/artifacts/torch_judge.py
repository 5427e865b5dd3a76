"""Judge a serialized model file against how the handler will load it on the image's torch."""

from __future__ import annotations

from sandbox.artifacts import handler_ast, torch_pickle
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
        sev: Severity = "error" if image.version_tuple >= WEIGHTS_ONLY_DEFAULT_FROM else "warning"
        out.append(
            make(
                "mar.weights-only",
                f"{serialized} pickles custom objects ({', '.join(t.custom_globals[:3])})"
                f": torch>=2.6 torch.load(weights_only=True) refuses them (image torch {image.version})",
                path=where,
                severity=sev,
            )
        )
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
    elif t.min_torch and version_tuple(t.min_torch[0]) > image.version_tuple:
        out.append(
            make(
                "mar.torch-version",
                f"{serialized} has a '{t.min_torch[1]}' record, written by torch >= "
                f"{t.min_torch[0]}; the image runs torch {image.version}",
                path=where,
                image_version=image.version,
            )
        )

