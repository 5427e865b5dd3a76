"""Run one container as a process the sandbox owns: ``python -m sandbox.runtimes.container_run SPEC.json``.

The pod machinery (process records, crash detection, stop by process group, orphan clean-up) works on
processes, so each model-server container has this process standing for it, the way ``docker run``
does in the foreground: it creates and starts the container described by SPEC (keyword arguments of
the docker SDK's ``containers.create``, and ``stop_timeout``), copies the container's output to its own (the
pod log), and exits with the container's exit code. On SIGTERM it stops the container (SIGTERM, then SIGKILL
after ``stop_timeout`` seconds, the sandbox's grace for every pod); the container is removed however it ends.
Keep it free of sandbox imports: it runs for as long as the model server does.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any


def _say(text: str) -> None:
    sys.stdout.write(f"gdc-sandbox: {text}\n")
    sys.stdout.flush()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _remove_leftover(client: Any, spec: dict[str, Any]) -> None:
    """Remove the container of an earlier run of this pod, of the same sandbox home, that outlived the process
    standing for it (one killed before its clean-up finished, e.g. by a failed liveness probe: the restarted pod
    keeps its name, so its container would not be created)."""
    from docker.errors import NotFound

    try:
        old = client.containers.get(spec.get("name"))
    except NotFound:
        return
    if old.labels.get("gdc-sandbox") == (spec.get("labels") or {}).get("gdc-sandbox"):
        _say(f"removing container {old.short_id} left by an earlier run of this pod")
        old.remove(force=True)


def run(spec: dict[str, Any]) -> int:
    import docker
    from docker.errors import DockerException

    stop_timeout = int(spec.pop("stop_timeout", 10))  # the SDK's containers.create does not take it
    try:
        client = docker.from_env()
        if spec.get("name"):
            _remove_leftover(client, spec)
        container = client.containers.create(**spec)
    except DockerException as exc:
        _say(f"could not create the container from image {spec.get('image')}: {exc}")
        return 125
    try:
        container.start()
        _say(f"container {container.short_id} ({spec.get('name')}) started from image {spec.get('image')}")
        for chunk in container.logs(stream=True, follow=True):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        code = int(container.wait().get("StatusCode", 1))
        _say(f"container {container.short_id} exited with code {code}")
        return code
    except DockerException as exc:
        _say(f"container {container.short_id} failed: {exc}")
        return 125
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finish the clean-up below whatever arrives
        try:
            container.stop(timeout=stop_timeout)
            container.remove(force=True)
        except DockerException as exc:
            _say(f"could not remove container {container.short_id}: {exc}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sandbox.runtimes.container_run SPEC.json", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    return run(json.loads(Path(args[0]).read_text()))


if __name__ == "__main__":
    sys.exit(main())
