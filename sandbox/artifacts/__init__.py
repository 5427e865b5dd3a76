"""Preflight checker: explain, before deploy, why an artifact will not serve.

>>> report = check_artifact(Path("models/m/1"))          # doctest: +SKIP
>>> report.ok, [d.code for d in report.diagnostics]      # doctest: +SKIP
(False, ['tf.no-serving-default'])

Everything is static: ``saved_model.pb`` is parsed with protobuf (no TensorFlow import), archives are
read as zips, handlers with :mod:`ast` and pickles with :mod:`pickletools`. Nothing the user wrote runs.
"""

from __future__ import annotations

import os
from itertools import islice
from pathlib import Path

from sandbox.artifacts import layout
from sandbox.artifacts.report import Report
from sandbox.diagnostics import Diagnostic, make
from sandbox.errors import UsageError
from sandbox.images import Framework, Image, newest

__all__ = ["Report", "check_artifact"]


# Each framework's checks are imported on first use: `gdc-sandbox check` on a SavedModel never loads the
# archive and pickle readers, and the other way round (the CLI runs in pre-commit hooks; start-up counts).
def check_savedmodel(path: Path, image: Image) -> list[Diagnostic]:
    from sandbox.artifacts.savedmodel import check_savedmodel as check

    return check(path, image)


def check_mar(path: Path, image: Image, rel: str) -> list[Diagnostic]:
    from sandbox.artifacts.mar import check_mar as check

    return check(path, image, rel)


def check_artifact(path: Path, image: Image | None = None) -> Report:
    """Check the version folder (or single file) at ``path`` against ``image`` (default: newest for its framework).

    Never raises on the artifact's content; raises :class:`~sandbox.errors.UsageError` if ``path`` does not exist
    or is neither a file nor a folder (a pipe, a device).
    """
    path = Path(path)
    if path.exists() and not (path.is_file() or path.is_dir()):
        raise UsageError(
            f"{path} is neither a file nor a folder",
            code="path.special-file",
            hint="pass the version folder (what goes to s3://BUCKET/MODEL_ID/MODEL_VERSION_ID/)",
        )
    if not path.exists():
        raise UsageError(
            f"no such file or folder: {path}",
            code="path.not-found",
            hint="pass the version folder (what goes to s3://BUCKET/MODEL_ID/MODEL_VERSION_ID/)",
        )
    diags: list[Diagnostic] = []
    framework = _guess_framework(path)
    chosen = image or newest(framework or "tf")
    try:
        framework = _check(path, chosen, diags) or framework
    except Exception as exc:  # a checker bug must not hide the artifact's problems: report it
        diags.append(
            make(
                "layout.no-model-file",
                f"the checker could not finish reading the artifact: {type(exc).__name__}: {str(exc)[:200]}",
                severity="warning",
                hint="report this as a checker bug, with the artifact if possible",
            )
        )
    if image is None and framework and framework != chosen.framework:
        chosen = newest(framework)
    if image is not None and framework and framework != image.framework:
        suggest = newest(framework).name
        diags.insert(
            0,
            make(
                "layout.image-mismatch",
                f"a {_LABEL[framework]} artifact cannot be served by {image.name} (a {_LABEL[image.framework]} image)",
                framework=_LABEL[framework],
                suggest=suggest,
            ),
        )
    report = Report(chosen, framework, diags)
    report.sort()
    return report


_LABEL = {"tf": "TensorFlow", "torch": "PyTorch"}


def _guess_framework(path: Path) -> Framework | None:
    if path.is_file():
        names = [path.name]
    else:
        with os.scandir(path) as entries:
            names = [e.name for e in islice(entries, 1000)]
    if any(n.endswith(".mar") or n.lower().endswith(layout.TORCH_SUFFIXES) for n in names):
        return "torch"
    if any(n in layout.SM_NAMES or n.lower().endswith(layout.KERAS_SUFFIXES) for n in names):
        return "tf"
    return None


def _check(path: Path, image: Image, out: list[Diagnostic]) -> Framework | None:
    if path.is_file():
        return _check_file(path, image, out)
    listing = layout.list_dir(path, layout.SEARCH_ENTRIES)
    if not listing.complete:  # a big tree: an artifact (list all of it), one nested too deep, or no artifact
        found = layout.models(listing)
        if any("/" not in f for f in found):  # saved_model.pb ("") or a .mar at the top
            listing = layout.list_dir(path)
        elif len(found) != 1:
            _not_an_artifact(path, listing, found, out)
            return None
    if not listing.files:
        out.append(make("layout.empty", f"{path} holds no files", path="."))
        return None
    lfs = [f for f, size in listing.files.items() if size <= 1024 and layout.is_lfs_pointer(path / f, size)]
    for f in lfs[:5]:
        out.append(
            make("layout.lfs-pointer", f"{f} is a {listing.files[f]}-byte Git LFS pointer, not the file", path=f)
        )
    if listing.total > layout.LIMIT_BYTES:
        out.append(make("layout.too-large", f"the artifact holds {listing.total / 1024**3:.1f} GB", path="."))
    top = set(listing.top())
    has_sm = any(n in top for n in layout.SM_NAMES)
    mars = sorted(n for n in top if n.endswith(".mar"))
    if has_sm and mars:
        out.append(make("layout.mixed-frameworks", f"saved_model.pb and {mars[0]} are both at the top", path="."))
    if has_sm:
        _note_duplicates(listing, out)
        if not (set(layout.SM_NAMES) & set(lfs)):
            out.extend(check_savedmodel(path, _pick(image, "tf")))
        return "tf"
    if mars:
        mar = "model.mar" if "model.mar" in mars else mars[0]
        if mar not in lfs:
            out.extend(check_mar(path / mar, _pick(image, "torch"), mar))
        return "torch"
    return _explain_missing(path, listing, image, out)


def _not_an_artifact(path: Path, listing: layout.Listing, found: list[str], out: list[Diagnostic]) -> None:
    where = f"the first {listing.entries:,} files and folders below it"
    if found:
        shown = ", ".join(found[:3]) + (" ..." if len(found) > 3 else "")
        why = f"and {where} hold {len(found)} models ({shown}), not one"
    else:
        why = f"nor do {where}"
    out.append(
        make(
            "layout.not-an-artifact",
            f"{path} is not a model artifact: no saved_model.pb or model.mar at its top, {why}",
            path=".",
            limit=f"{listing.entries:,}",
        )
    )


def _note_duplicates(listing: layout.Listing, out: list[Diagnostic]) -> None:
    deeper = [f for f in listing.named(*layout.SM_NAMES) if "/" in f]
    if deeper:
        inner = deeper[0].rsplit("/", 1)[0] + "/"
        out.append(
            make(
                "layout.duplicate-model",
                f"another SavedModel sits in {inner}; the image loads only the top-level one",
                path=inner,
                inner=inner,
            )
        )


def _explain_missing(path: Path, listing: layout.Listing, image: Image, out: list[Diagnostic]) -> Framework | None:
    nested = listing.named(*layout.SM_NAMES) or listing.named("model.mar") or listing.suffixed(".mar")
    if nested:
        inner = nested[0].rsplit("/", 1)[0]
        out.append(
            make(
                "layout.nested",
                f"the model is at {nested[0]}, {inner.count('/') + 1} folder(s) below the "
                "top; the image looks only at the top of the version folder",
                path=nested[0],
                inner=inner + "/",
            )
        )
        if nested[0].endswith(".mar"):
            out.extend(check_mar(path / nested[0], _pick(image, "torch"), nested[0]))
            return "torch"
        out.extend(_prefixed(check_savedmodel(path / inner, _pick(image, "tf")), inner + "/"))
        return "tf"
    for f in listing.suffixed(*layout.ARCHIVE_SUFFIXES)[:3]:
        framework = _archive_holding_model(path / f, f, "the image does not extract archives", out)
        if framework:
            return framework
    return _explain_other(path, listing, out)


def _archive_holding_model(archive: Path, rel: str, advice: str, out: list[Diagnostic]) -> Framework | None:
    """``layout.nested`` if the zip/tar ``archive`` holds a model; returns that model's framework."""
    inside = layout.model_inside(layout.archive_members(archive) or [])
    if not inside:
        return None
    out.append(
        make(
            "layout.nested",
            f"{rel} is an archive holding {inside}; {advice}",
            path=rel,
            inner=f"the extracted {inside.rsplit('/', 1)[0] or '.'}/",
        )
    )
    return "torch" if inside.endswith(".mar") else "tf"


def _explain_other(path: Path, listing: layout.Listing, out: list[Diagnostic]) -> Framework | None:
    files = list(listing.files)
    keras = listing.suffixed(*layout.KERAS_SUFFIXES)
    torch_files = listing.suffixed(*layout.TORCH_SUFFIXES)
    if keras:
        out.append(make("tf.keras-file", f"{keras[0]} is a Keras file, not a SavedModel", path=keras[0]))
        return "tf"
    if torch_files:
        out.append(
            make(
                "torch.raw-weights",
                f"{torch_files[0]} is a raw PyTorch file and there is no model.mar",
                path=torch_files[0],
            )
        )
        return "torch"
    if path.name == "variables" and any(f.startswith("variables.") for f in files):
        out.append(
            make(
                "layout.no-model-file",
                "this is the variables/ folder of a SavedModel",
                path=".",
                extra="; point at its parent folder, which holds saved_model.pb",
            )
        )
        return "tf"
    if any(f.startswith("variables/") for f in files) or any(f.endswith(".pb") for f in files):
        pbs = [f for f in files if f.endswith(".pb") and f != "fingerprint.pb"]
        why = f"{pbs[0]} must be named saved_model.pb" if pbs else "variables/ is here but saved_model.pb is not"
        out.append(
            make(
                "layout.no-model-file",
                f"a SavedModel without saved_model.pb: {why}",
                path=".",
                extra=" (a partial upload or a renamed file)",
            )
        )
        return "tf"
    if layout.is_checkpoint(files):
        out.append(
            make(
                "tf.checkpoint-only",
                f"found training checkpoint files ({', '.join(files[:3])}) but no saved_model.pb",
                path=".",
            )
        )
        return "tf"
    shown = ", ".join(files[:5]) + (" ..." if len(files) > 5 else "")
    out.append(make("layout.no-model-file", f"no saved_model.pb or model.mar in the folder (found: {shown})", path="."))
    return None


def _pick(image: Image, framework: Framework) -> Image:
    return image if image.framework == framework else newest(framework)


def _prefixed(diags: list[Diagnostic], prefix: str) -> list[Diagnostic]:
    return [Diagnostic(d.code, d.severity, d.message, d.hint, prefix + d.path if d.path else d.path) for d in diags]


def _check_file(path: Path, image: Image, out: list[Diagnostic]) -> Framework | None:
    name = path.name
    lower = name.lower()
    if layout.is_lfs_pointer(path):
        out.append(make("layout.lfs-pointer", f"{name} is a Git LFS pointer, not the file", path=name))
        return _guess_framework(path)
    if lower.endswith(".mar"):
        out.extend(check_mar(path, _pick(image, "torch"), name))
        return "torch"
    if name in layout.SM_NAMES:
        out.append(
            make(
                "layout.file-not-dir",
                f"{name} is a file; the artifact is the folder that holds it",
                path=name,
                name=name,
            )
        )
        out.extend(check_savedmodel(path.parent, _pick(image, "tf")))
        return "tf"
    if lower.endswith(layout.KERAS_SUFFIXES):
        out.append(make("tf.keras-file", f"{name} is a Keras file, not a SavedModel", path=name))
        return "tf"
    if lower.endswith(layout.TORCH_SUFFIXES):
        out.append(make("torch.raw-weights", f"{name} is a raw PyTorch file, not a model.mar", path=name))
        return "torch"
    if lower.endswith(layout.ARCHIVE_SUFFIXES):
        framework = _archive_holding_model(path, name, "upload the extracted folder", out)
        if framework:
            return framework
    if layout.is_checkpoint([name]):
        out.append(make("tf.checkpoint-only", f"{name} is a training checkpoint file, not a SavedModel", path=name))
        return "tf"
    out.append(make("layout.no-model-file", f"{name} is not a model artifact; pass the version folder", path=name))
    return None
