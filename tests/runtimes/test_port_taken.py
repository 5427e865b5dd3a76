"""A port the sandbox gave a pod can be taken by another process before the pod's server binds it: that server
exits saying so, and the pod starts once more on other ports. The artifact is never blamed for it."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sandbox.images import resolve
from sandbox.runtimes.base import PORT_TAKEN, ModelServerPod, PodSpec
from sandbox.runtimes.tensorflow import TFServingPod
from sandbox.runtimes.torchserve import TorchServePod

from . import artifacts


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on which another process listens (this test) for as long as the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def first_given(kind: type[ModelServerPod], port: int) -> type[ModelServerPod]:
    """``kind``, except that its first HTTP port is ``port`` (as if another process took it meanwhile)."""

    class Unlucky(kind):  # type: ignore[valid-type, misc]
        handed_out = 0

        def allocate_ports(self, *names: str) -> None:
            super().allocate_ports(*names)
            Unlucky.handed_out += 1
            if Unlucky.handed_out == 1:
                self.ports["http"] = port

    return Unlucky


@pytest.mark.parametrize(
    ("kind", "image", "build"),
    [
        (TFServingPod, "tf2-cpu.2-18", artifacts.keras3_dense),
        (TorchServePod, "pytorch-cpu.2-4", artifacts.torchscript_linear),
    ],
    ids=["tf", "torch"],
)
def test_a_pod_whose_port_was_taken_starts_again_on_other_ports_and_serves(
    kind: type[ModelServerPod],
    image: str,
    build: Callable[[Path, Path], Path],
    taken_port: int,
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    folder = build(tmp_path / "art", tmp_path / "src")
    spec = PodSpec(
        name="unlucky",
        image=resolve(image),
        artifact_dir=folder,
        pod_dir=tmp_path / "pods" / "unlucky",
        log_path=tmp_path / "logs" / "unlucky.log",
    )
    pod = first_given(kind, taken_port)(spec)
    try:
        info = pod.start(timeout=120)
        assert info.ports["http"] != taken_port and info.base_url.endswith(f":{info.ports['http']}")
        assert not pod.exited()
        assert PORT_TAKEN in spec.log_path.read_text(errors="replace")  # the first try said why it ended
    finally:
        pod.stop()


def test_a_pod_adopting_an_idle_torchserve_that_lost_its_port_starts_cold_and_serves(
    taken_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox.process import free_port
    from sandbox.runtimes import ts_warm
    from sandbox.runtimes.forkserver import ForkServers

    handed_out: list[int] = []

    def unlucky_free_port(host: str = "127.0.0.1") -> int:
        handed_out.append(taken_port if not handed_out else free_port(host))
        return handed_out[-1]

    monkeypatch.setattr(ts_warm, "free_port", unlucky_free_port)  # the idle server's first port is taken
    (tmp_path / "src").mkdir()
    folder = artifacts.torchscript_linear(tmp_path / "art", tmp_path / "src")
    forkservers = ForkServers(tmp_path / "forkservers", run_dir=tmp_path / "warm")
    spec = PodSpec(
        name="adopter",
        image=resolve("pytorch-cpu.2-4"),
        artifact_dir=folder,
        pod_dir=tmp_path / "pods" / "adopter",
        log_path=tmp_path / "logs" / "adopter.log",
        forkservers=forkservers,
    )
    pod = TorchServePod(spec)
    try:
        assert TorchServePod.warm_up(forkservers, resolve("pytorch-cpu.2-4"))
        info = pod.start(timeout=120)  # adopts the idle server (still starting), which then exits: cold start
        assert handed_out[0] == taken_port and info.ports["http"] != taken_port and not pod.exited()
        assert PORT_TAKEN in spec.log_path.read_text(errors="replace")
    finally:
        pod.stop()
        forkservers.close()
