"""Per-image Python environments, all under one cache folder: create once (showing progress), reuse, carry offline.

An :class:`EnvSpec` says which Python and which pinned packages one image runs (``torch-2.4``: Python 3.9,
torch 2.4.1, torchvision 0.19.1, TorchServe 0.12). :func:`ensure` returns that environment's interpreter,
creating the virtualenv ``CACHE/KEY`` on first use with pip from PyPI, or with no network from a wheelhouse
written by :func:`download` (``gdc-sandbox runtimes download DIR`` / ``runtimes install --from DIR``).

Example::

    >>> ensure(spec, cache_dir(), progress=print)   # doctest: +SKIP
    PosixPath('/root/.cache/gdc-sandbox/runtimes/torch-2.4/bin/python')
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sandbox.process import tail

STAMP = ".sandbox-runtime.json"
RUNTIME_CACHE_VARIABLE = "GDC_SANDBOX_RUNTIME_CACHE"
Progress = Callable[[str], None]


class RuntimeUnavailable(RuntimeError):
    """No environment can be made for this image here; the message says why and what to do."""


@dataclass(frozen=True)
class EnvSpec:
    """One runtime environment: its folder name, interpreter version and pinned packages."""

    key: str
    """Folder name under the cache, e.g. ``torch-2.4``."""
    title: str
    """What it is, for people: ``PyTorch 2.4.1 + torchvision 0.19.1 on Python 3.9``."""
    python: str | None
    """``"3.9"``: an interpreter of that version is looked up; ``None``: the sandbox's own Python."""
    packages: tuple[str, ...]
    no_deps: tuple[str, ...] = ()
    """Installed after ``packages`` with ``--no-deps`` (their declared dependencies would pull the wrong build)."""
    size_note: str = ""
    """What creating it costs: ``about 2.6 GB from PyPI, 5 GB on disk, 3-6 minutes``."""
    verify: str = "pass"
    """Python code run by the new interpreter once installed; it must exit 0 (it proves imports and a CPU call)."""


def cache_dir() -> Path:
    """The one folder of every runtime: ``GDC_SANDBOX_RUNTIME_CACHE``, default ``~/.cache/gdc-sandbox/runtimes``."""
    default = Path.home() / ".cache" / "gdc-sandbox" / "runtimes"
    return Path(os.environ.get(RUNTIME_CACHE_VARIABLE) or default).expanduser()


def python_override_var(version: str) -> str:
    """``GDC_SANDBOX_PYTHON39``: the variable naming an interpreter for Python ``3.9``."""
    return "GDC_SANDBOX_PYTHON" + version.replace(".", "")


def _candidates(version: str) -> Iterator[str]:
    override = os.environ.get(python_override_var(version))
    if override:
        yield override
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        yield sys.executable
    found = shutil.which(f"python{version}")
    if found:
        yield found
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv"), "/root/.pyenv", "/opt/pyenv"]
    for root in filter(None, roots):
        yield from sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"), reverse=True)
    yield from (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}")


def interpreter_version(python: str) -> str | None:
    """``"3.9"`` for a working interpreter, None when it does not run."""
    try:
        proc = subprocess.run(
            [python, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def find_python(version: str | None) -> Path:
    """An interpreter of Python ``version``; raises :class:`RuntimeUnavailable` saying how to get one."""
    if version is None:
        return Path(sys.executable)
    tried: list[str] = []
    for candidate in _candidates(version):
        if candidate in tried or not os.access(candidate, os.X_OK):
            continue
        tried.append(candidate)
        if interpreter_version(candidate) == version:
            return Path(candidate)
    raise RuntimeUnavailable(
        f"no Python {version} interpreter found (the image runs Python {version}; looked for "
        f"${python_override_var(version)}, python{version} on PATH, ~/.pyenv/versions/{version}.*). "
        f"Fix: install it (`pyenv install {version}` or `apt-get install python{version} python{version}-venv`) "
        f"or point {python_override_var(version)} at one, e.g. "
        f"`export {python_override_var(version)}=/path/to/python{version}`"
    )


def env_dir(spec: EnvSpec, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / spec.key


def env_python(spec: EnvSpec, cache: Path | None = None) -> Path:
    return env_dir(spec, cache) / "bin" / "python"


def stamp_of(spec: EnvSpec, cache: Path | None = None) -> dict[str, object] | None:
    """The stamp of a finished environment (what was installed, when, how long it took), or None."""
    try:
        return dict(json.loads((env_dir(spec, cache) / STAMP).read_text()))
    except (OSError, ValueError):
        return None


def installed(spec: EnvSpec, cache: Path | None = None) -> dict[str, object] | None:
    """The stamp of ``spec``'s environment if it holds exactly ``spec``'s pins, else None."""
    stamp = stamp_of(spec, cache)
    if stamp and stamp.get("packages") == list(spec.packages) and stamp.get("no_deps") == list(spec.no_deps):
        return stamp
    return None


def folder_size(path: Path) -> int:
    """Bytes on disk under ``path`` (hard links counted once, symlinks not followed)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def ensure(
    spec: EnvSpec, cache: Path | None = None, progress: Progress = print, wheelhouse: Path | None = None
) -> Path:
    """The interpreter of ``spec``'s environment, created first if needed (from ``wheelhouse`` with no network)."""
    if spec.python is None and not spec.packages:
        return Path(sys.executable)
    cache = cache or cache_dir()
    if installed(spec, cache):
        return env_python(spec, cache)
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{spec.key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second creator waits here, then finds the stamp; close unlocks
        if not installed(spec, cache):
            _create(spec, cache, progress, wheelhouse)
    return env_python(spec, cache)


def _pip(python: Path, *args: str, wheelhouse: Path | None = None) -> list[str]:
    offline = ["--no-index", "--find-links", str(wheelhouse)] if wheelhouse else []
    return [str(python), "-m", "pip", *args, "--disable-pip-version-check", "--no-input", *offline]


def _create(spec: EnvSpec, cache: Path, progress: Progress, wheelhouse: Path | None) -> None:
    target = env_dir(spec, cache)
    base = find_python(spec.python)
    log = cache / f"{spec.key}.install.log"
    source = f"from the wheelhouse {wheelhouse} (no network)" if wheelhouse else f"downloading {spec.size_note}"
    started = time.monotonic()
    python = env_python(spec, cache)
    if stamp_of(spec, cache) and python.exists():  # an older set of pins: pip brings it up to date in place
        progress(f"Updating the {spec.title} runtime in {target} to new pins, {source}. Log: {log}")
    else:
        if target.exists():
            shutil.rmtree(target)  # an interrupted creation: start over
        log.write_text("")
        progress(f"Creating the {spec.title} runtime in {target}, one time only, {source}. Log: {log}")
        _run([str(base), "-m", "venv", str(target)], log, progress)
    _run(_pip(python, "install", *spec.packages, wheelhouse=wheelhouse), log, progress)
    if spec.no_deps:
        _run(_pip(python, "install", "--no-deps", *spec.no_deps, wheelhouse=wheelhouse), log, progress)
    progress(f"Checking that {spec.title} imports and runs on the CPU...")
    _run([str(python), "-c", spec.verify], log, progress)
    seconds = time.monotonic() - started
    size = folder_size(target)
    stamp = {"key": spec.key, "title": spec.title, "python": str(base), "packages": list(spec.packages),
             "no_deps": list(spec.no_deps), "seconds": round(seconds), "bytes": size,
             "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "wheelhouse": str(wheelhouse or "")}
    (target / STAMP).write_text(json.dumps(stamp, indent=1))
    progress(f"{spec.title} runtime ready in {seconds:.0f}s ({size / 1e9:.1f} GB): {python}")


_NOTEWORTHY = re.compile(r"^\s*(Downloading|Collecting|Installing collected packages|Successfully installed)\b")


def _run(cmd: list[str], log: Path, progress: Progress) -> None:
    """Run ``cmd`` with its output appended to ``log``; pass pip's download lines on, with a heartbeat."""
    with open(log, "ab") as fh:
        fh.write(("\n$ " + " ".join(cmd) + "\n").encode())
        fh.flush()
        offset = fh.tell()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    done = threading.Event()
    watcher = threading.Thread(target=_follow, args=(log, offset, progress, done), daemon=True)
    watcher.start()
    code = proc.wait()
    done.set()
    watcher.join(timeout=5)
    if code != 0:
        raise RuntimeUnavailable(f"command failed (exit {code}): {' '.join(cmd)}\n{tail(log, 30)}")


def _follow(log: Path, offset: int, progress: Progress, done: threading.Event) -> None:
    started = time.monotonic()
    with open(log, "rb") as fh:
        fh.seek(offset)
        last, last_said, partial = "", started, b""
        while True:
            finished = done.is_set()  # read once more after the command ended: its last lines
            chunk = fh.read()
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()
            for raw in lines:
                line = raw.decode("utf-8", "replace").strip()
                if _NOTEWORTHY.match(line):
                    last, last_said = _short(line), time.monotonic()
                    progress(last)
            if last and time.monotonic() - last_said > 20:
                last_said = time.monotonic()
                progress(f"{last} ... still working, {last_said - started:.0f}s")
            if finished:
                return
            done.wait(0.5)


def _short(pip_line: str) -> str:
    """One pip line, with long package lists cut: ``Installing 31 packages: mpmath, urllib3, ...``."""
    if pip_line.startswith("Installing collected packages: "):
        verb, items = "Installing", pip_line.split(": ", 1)[1].split(", ")
    elif pip_line.startswith("Successfully installed "):
        verb, items = "Installed", pip_line.split(" ")[2:]
    else:
        return pip_line[:200]
    noun = "package" if len(items) == 1 else "packages"
    return f"{verb} {len(items)} {noun}: {', '.join(items[:4])}{', ...' if len(items) > 4 else ''}"


def download(spec: EnvSpec, dest: Path, progress: Progress = print) -> Path:
    """Write every wheel ``spec`` needs into ``dest/KEY`` (on a machine with PyPI); returns that folder."""
    base = find_python(spec.python)
    folder = Path(dest) / spec.key
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "download.log"
    progress(f"Downloading the {spec.title} wheels into {folder} ({spec.size_note})")
    _run([str(base), "-m", "pip", "download", "--disable-pip-version-check", "-d", str(folder), *spec.packages,
          "pip", "setuptools", "wheel"], log, progress)
    if spec.no_deps:
        _run([str(base), "-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "-d", str(folder),
              *spec.no_deps], log, progress)
    (folder / "runtime.json").write_text(json.dumps({"key": spec.key, "python": spec.python,
                                                      "packages": list(spec.packages), "no_deps": list(spec.no_deps)}))
    progress(f"{spec.title}: {folder_size(folder) / 1e9:.1f} GB of wheels in {folder}")
    return folder


def wheelhouse_for(spec: EnvSpec, root: Path) -> Path:
    """The folder of ``spec`` inside a wheelhouse written by :func:`download`; raises if it is not there."""
    folder = Path(root) / spec.key
    if not (folder / "runtime.json").exists():
        raise RuntimeUnavailable(
            f"{root} holds no wheels for {spec.key} ({folder}/runtime.json is missing). Fix: on a machine with "
            f"PyPI access run `gdc-sandbox runtimes download {root}` and copy the folder here"
        )
    return folder
