"""Stand-in images for the compose backend, built on this machine without pulling anything.

Where the upstream images (``tensorflow/serving``, ``pytorch/torchserve``, ``minio/minio``) cannot be
pulled, these run the same compose backend end to end. They are never tagged with an upstream name:

- ``gdc-sandbox-standin/tensorflow-serving:2.18``: ``tensorflow_model_server`` is this project's
  TF Serving-compatible server on TensorFlow 2.18 (not the C++ binary);
- ``gdc-sandbox-standin/torchserve:0.12``: real TorchServe 0.12.0 and OpenJDK 17, with this
  environment's torch (not the torch of GDC's PyTorch image);
- ``gdc-sandbox-standin/minio:moto``: this project's S3 server (moto) with MinIO's command line (not MinIO).

All three are stages of ``containers/standin/Dockerfile`` on one base image: a Debian bookworm root
filesystem made by ``debootstrap`` (``python3``, ``openjdk-17-jre-headless``) plus this
environment's site-packages, streamed into ``docker import``. The root filesystem tarball is cached
in ``~/.cache/gdc-sandbox/standins`` (``GDC_SANDBOX_STANDIN_CACHE``), so only the first build
downloads Debian packages; the build context is sent from memory, so no build folder is left behind.

``python -m sandbox.standins build`` builds them into the engine at ``DOCKER_HOST`` and prints the
``GDC_SANDBOX_IMAGE_*`` variables that point the compose backend at them.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from sandbox.runtimes.container_images import override_variable

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "containers" / "standin"
SUITE = "bookworm"
PACKAGES = ("python3", "openjdk-17-jre-headless")
SITE_PACKAGES_IN_IMAGE = "usr/local/lib/python3.11/dist-packages"
SKIPPED = ("__editable__", "gdc_sandbox-", "mypy/", "_pytest/", "pytest/", "tensorflow/include/", "torch/include/")
"""Site-packages paths left out: the editable install of this project (its code goes in the stand-in layer),
development tools, and C++ headers (a third of the files, which every test run would import and delete)."""

STANDINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tensorflow-serving": ("gdc-sandbox-standin/tensorflow-serving:2.18", ("tf2-cpu.2-18", "tf2-gpu.2-18")),
    "torchserve": ("gdc-sandbox-standin/torchserve:0.12", ("pytorch-cpu.2-4", "pytorch-gpu.2-4")),
    "minio": ("gdc-sandbox-standin/minio:moto", ("minio",)),
}
"""Dockerfile stage -> (tag, names it stands in for)."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "gdc-sandbox" / "standins"
    return Path(os.environ.get("GDC_SANDBOX_STANDIN_CACHE", default))


def image_variables() -> dict[str, str]:
    """``GDC_SANDBOX_IMAGE_*`` -> stand-in tag, for every name a stand-in serves."""
    return {override_variable(name): tag for tag, names in STANDINS.values() for name in names}


def rootfs_tarball(progress: Callable[[str], None] = print) -> Path:
    """The cached Debian root filesystem tarball; made with debootstrap the first time."""
    key = hashlib.sha256(f"{SUITE} {' '.join(PACKAGES)}".encode()).hexdigest()[:12]
    target = cache_dir() / f"rootfs-{SUITE}-{key}.tar"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    mirror = os.environ.get("GDC_SANDBOX_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    build = Path(tempfile.mkdtemp(prefix="rootfs-", dir=target.parent))
    log = target.with_suffix(".log")
    progress(f"building the stand-in root filesystem with debootstrap ({SUITE}; log {log}; one time, a few minutes)")
    try:
        with open(log, "wb") as out:
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(build), mirror],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
            )
        partial = target.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            for entry in sorted(build.iterdir()):
                tar.add(entry, arcname=entry.name)
        partial.replace(target)
    finally:
        _unmount_below(build)
        shutil.rmtree(build, ignore_errors=True)
    return target


def _unmount_below(folder: Path) -> None:
    """debootstrap mounts /proc and /sys in the new root while it runs; an interrupted run leaves them."""
    for line in reversed(Path("/proc/mounts").read_text().splitlines()):
        mount_point = line.split()[1]
        if mount_point.startswith(str(folder) + "/"):
            subprocess.run(["umount", "-l", mount_point], check=False)


def site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _base_members(rootfs: Path) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    with tarfile.open(rootfs) as tar:
        for member in tar:
            yield member, tar.extractfile(member) if member.isfile() else None


def _write_base(out: BinaryIO, rootfs: Path) -> None:
    """Stream the base image: the root filesystem, then this environment's site-packages."""
    with tarfile.open(fileobj=out, mode="w|") as tar:
        for member, data in _base_members(rootfs):
            tar.addfile(member, data)
        packages = site_packages()
        for entry in sorted(packages.iterdir()):
            tar.add(entry, arcname=f"{SITE_PACKAGES_IN_IMAGE}/{entry.name}", filter=_kept)


def _kept(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    inside = member.name[len(SITE_PACKAGES_IN_IMAGE) + 1 :] + ("/" if member.isdir() else "")
    return None if inside.startswith(SKIPPED) else member


def base_tag() -> str:
    """Tag of the base image; changes with the locked dependencies and the root filesystem recipe."""
    lock = (ROOT / "requirements" / "lock.txt").read_bytes()
    recipe = f"{SUITE} {PACKAGES} {SKIPPED} {SITE_PACKAGES_IN_IMAGE} {sys.version}"
    key = hashlib.sha256(lock + recipe.encode()).hexdigest()[:12]
    return f"gdc-sandbox-standin/base:{key}"


def import_base(client: Any, progress: Callable[[str], None] = print) -> str:
    """Import the base image into the engine unless it is there already; returns its tag."""
    from docker.errors import ImageNotFound

    tag = base_tag()
    try:
        client.images.get(tag)
        return tag
    except ImageNotFound:
        pass
    rootfs = rootfs_tarball(progress)
    progress(f"importing the stand-in base image {tag} (root filesystem + {site_packages()})")
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                _write_base(writer, rootfs)
            except BaseException as exc:  # reported below, after the import call returns
                failure.append(exc)
            finally:
                writer.close()

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        repository, _, version = tag.partition(":")
        client.api.import_image_from_stream(reader, repository=repository, tag=version)
        thread.join()
    if failure:
        raise failure[0]
    return tag


def build_context() -> io.BytesIO:
    """The build context, in memory: the recipe folder and the project's ``sandbox`` package."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(RECIPE / "Dockerfile", arcname="Dockerfile")
        tar.add(RECIPE / "bin", arcname="bin")
        tar.add(ROOT / "sandbox", arcname="sandbox", filter=lambda m: None if "__pycache__" in m.name else m)
    buffer.seek(0)
    return buffer


def build(client: Any, progress: Callable[[str], None] = print) -> dict[str, str]:
    """Build every stand-in into the engine of ``client``; returns :func:`image_variables`."""
    base = import_base(client, progress)
    for stage, (tag, names) in STANDINS.items():
        progress(f"building {tag} (stands in for {', '.join(names)})")
        client.images.build(
            fileobj=build_context(),
            custom_context=True,
            target=stage,
            tag=tag,
            buildargs={"BASE": base},
            pull=False,
            rm=True,
            forcerm=True,
            network_mode="none",
        )
    return image_variables()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["build"]:
        print("usage: python -m sandbox.standins build   (into the Docker engine at DOCKER_HOST)", file=sys.stderr)
        return 2
    from sandbox.compose import docker_client
    from sandbox.errors import SandboxError

    try:
        variables = build(docker_client(), lambda text: print(text, file=sys.stderr, flush=True))
    except SandboxError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    print("# point the compose backend at the stand-ins:")
    for name, tag in variables.items():
        print(f"export {name}={tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
