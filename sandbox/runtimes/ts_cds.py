"""A class-data-sharing (CDS) archive of TorchServe's frontend, made once per runtime and JVM.

Each PyTorch pod starts a JVM whose first CPU-second goes mostly to reading and verifying the frontend's classes
from ``model-server.jar``. JDK 17 can map those classes from an archive instead (AppCDS): about 40 % less CPU up
to the first ``/ping``. The sandbox makes the archive itself, the first time a native TorchServe starts for a
runtime: a frontend with no model is started with ``-XX:ArchiveClassesAtExit``, answers ``/ping``, is stopped and
writes the archive as it exits (a few seconds, once). Pods then run with ``-XX:SharedArchiveFile``.

It is safe when missing, stale or broken:

- The archive's name carries what it was made from (the ``java`` binary and its ``libjvm.so``, the frontend jar,
  the JVM options): another JDK, TorchServe or option set looks for another file, and makes it.
- It is written under a temporary name and renamed once complete, by one process at a time (a lock file);
  a sandbox that finds the lock taken starts its pods without the archive meanwhile.
- ``-Xshare:auto`` (TorchServe's own default) makes the JVM start without it if it cannot be used, and
  ``-Xlog:cds*=off`` keeps that silent: the pod's log shows what TorchServe says, never a CDS warning.
- When making it fails, a ``.failed`` file beside it records why, and it is not tried again for an hour; where
  the runtime cache cannot be written to, pods start without it.

CDS takes a class path directory only when it is empty, and TorchServe puts ``.`` first on its class path:
the frontend therefore runs in an empty working folder (:mod:`sandbox.runtimes.ts_launch`).
The archive lives in the runtime's folder of the runtime cache (``.cds/``); deleting it is always safe.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from sandbox.process import free_port

FRONTEND_VMARGS = "-Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto"
"""The JVM options of every TorchServe the sandbox starts (also in containers)."""
QUIET = "-Xlog:cds*=off"
"""No CDS message in TorchServe's log (e.g. when an archive cannot be used and the JVM starts without it)."""
MAKE_TIMEOUT = 90.0
"""Seconds the archive-making frontend may take to start and to write the archive, each."""
RETRY_AFTER = 3600.0
"""Seconds after a failure to make the archive before it is tried again (a port taken meanwhile, say)."""


def java_binary() -> Path | None:
    """The ``java`` that TorchServe's launcher runs: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return Path(os.path.realpath(found)) if found and os.path.isfile(found) else None


def ts_home(python: Path) -> Path | None:
    """The folder TorchServe's launcher calls its home (the runtime's site-packages, real path), if it has one."""
    jars = glob.glob(str(python.parent.parent / "lib" / "python*" / "site-packages" / "ts" / "frontend" / "*.jar"))
    return Path(os.path.realpath(jars[0])).parents[2] if jars else None


def _identity(path: Path) -> str:
    stat = path.stat()
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def archive_path(python: Path, vmargs: str = FRONTEND_VMARGS) -> Path | None:
    """Where the archive for ``python``'s TorchServe, this JVM and ``vmargs`` is (or would be); None: no CDS here."""
    java, home = java_binary(), ts_home(python)
    if java is None or home is None:
        return None
    parts = [_identity(java), vmargs]
    parts += [_identity(Path(p)) for p in sorted(glob.glob(str(java.parent.parent / "lib" / "server" / "*.so")))]
    parts += [_identity(Path(p)) for p in sorted(glob.glob(str(home / "ts" / "frontend" / "*")))]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return python.parent.parent / ".cds" / f"torchserve-frontend-{key}.jsa"


def vmargs(python: Path, base: str = FRONTEND_VMARGS) -> str:
    """``base`` plus the options that map the frontend's classes from the archive, made first if there is none
    (once; without it when it cannot be made or another process is making it)."""
    path = archive_path(python, base)
    if path is None:
        return base
    if not path.is_file() and not _failed_lately(path):
        try:
            with _lock(path) as mine:
                if mine and not path.is_file():
                    _make(python, path, base)
        except OSError:
            pass  # a runtime cache it cannot write to (read-only, full): pods start without the archive
    return f"{base} -XX:SharedArchiveFile={path} {QUIET}" if path.is_file() else base


def _failed_lately(path: Path) -> bool:
    try:
        return time.time() - path.with_suffix(".failed").stat().st_mtime < RETRY_AFTER
    except OSError:
        return False


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[bool]:
    """Hold ``path``'s lock file if no other process does (yields False then)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _make(python: Path, path: Path, base: str) -> None:
    """Start a frontend with no model as TorchServe's launcher would, wait for ``/ping``, stop it: it writes the
    archive as it exits. Records the reason in ``.failed`` when that does not work."""
    java, home = java_binary(), ts_home(python)
    assert java is not None and home is not None
    with tempfile.TemporaryDirectory(prefix="gdcs-cds-") as scratch:
        folder = Path(scratch)
        for name in ("cwd", "model-store", "logs"):
            (folder / name).mkdir()
        port = free_port()
        (folder / "config.properties").write_text(
            "\n".join(
                [
                    f"inference_address=http://127.0.0.1:{port}",
                    f"management_address=http://127.0.0.1:{free_port()}",
                    f"metrics_address=http://127.0.0.1:{free_port()}",
                    f"grpc_inference_port={free_port()}",
                    f"grpc_management_port={free_port()}",
                    "disable_token_authorization=true",
                    "enable_metrics_api=false",
                    "",
                ]
            )
        )
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")
        argv = [
            str(java),
            f"-Dmodel_server_home={home}",
            f"-Djava.io.tmpdir={folder}",
            *base.split(),
            f"-XX:ArchiveClassesAtExit={partial}",
            QUIET,
            "-cp",
            f".:{home / 'ts' / 'frontend' / '*'}",  # exactly the class path TorchServe's launcher gives it
            "org.pytorch.serve.ModelServer",
            "--python",
            str(python),
            "-f",
            str(folder / "config.properties"),
            "-s",
            str(folder / "model-store"),
            "-ncs",
            "--disable-token-auth",
        ]
        env = {**os.environ, "LOG_LOCATION": str(folder / "logs"), "METRICS_LOCATION": str(folder / "logs")}
        log = folder / "frontend.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                argv, cwd=folder / "cwd", env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            problem = _made(process, port, partial)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if problem:
            partial.unlink(missing_ok=True)
            tail = log.read_text(errors="replace")[-2000:]
            path.with_suffix(".failed").write_text(f"{problem}\n{' '.join(argv)}\n{tail}")
        else:
            os.replace(partial, path)


def _made(process: subprocess.Popen[bytes], port: int, partial: Path) -> str:
    """'' once ``process`` answered /ping and wrote ``partial`` on SIGTERM; else what went wrong."""
    deadline = time.monotonic() + MAKE_TIMEOUT
    while not _pinged(port):
        if process.poll() is not None:
            return f"the frontend exited with status {process.returncode} before answering /ping"
        if time.monotonic() > deadline:
            return f"the frontend did not answer /ping within {MAKE_TIMEOUT:.0f}s"
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(MAKE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"the frontend did not exit within {MAKE_TIMEOUT:.0f}s of SIGTERM"
    return "" if partial.is_file() and partial.stat().st_size > 0 else "the frontend wrote no archive as it exited"


def _pinged(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
