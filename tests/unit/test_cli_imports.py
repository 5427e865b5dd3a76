"""What each CLI command imports in a new process (``python -X importtime``): the start-up path of the commands
people run in loops stays free of the heavy libraries. A test of what is imported, not of how long it takes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.artifacts import tfproto

#: Top-level packages no command below may import: HTTP/S3/validation stacks and the frameworks.
HEAVY = {
    "boto3",
    "botocore",
    "requests",
    "urllib3",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "tensorflow",
    "keras",
    "torch",
    "numpy",
    "moto",
    "werkzeug",
    "uvicorn",
    "aiohttp",
    "yaml",
}
#: What the preflight checker needs besides the standard library: it reads protobufs without TensorFlow.
CHECKER_ALLOWED = {"google"}


def imported(args: list[str], home: Path, cwd: Path) -> set[str]:
    """Top-level modules a new ``python -m sandbox.cli ARGS`` process imports (from ``-X importtime``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GDC_SANDBOX_")}
    env["GDC_SANDBOX_HOME"] = str(home)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "sandbox.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "sandbox" in names, proc.stderr[-2000:]  # importtime output was read
    return names


@pytest.fixture
def saved_model(tmp_path: Path) -> Path:
    """A SavedModel with one serving meta graph, written with the checker's own protos."""
    model = tfproto.SavedModel()
    graph = model.meta_graphs.add()
    graph.meta_info_def.tags.append("serve")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(model.SerializeToString())
    return folder


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["status"],
        ["get", "deployedmodels"],
        ["get", "deployedmodel", "m", "-o", "jsonpath={.status.primaryCondition}"],
        ["get", "deployedmodels", "-o", "wide"],
        ["wait", "deployedmodel/m", "--for=jsonpath={.status.primaryCondition.reason}=Ready", "--timeout=1s"],
        ["predict", "my-ep", "--instances", "[[1.0, 2.0]]"],
        ["deploy", "s3://models/m/1", "--image", "tf2-cpu.2-18"],
        ["delete", "deployedmodel", "m"],
        ["iam", "list"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_loop_commands_import_nothing_heavy(args: list[str], tmp_path: Path) -> None:
    assert imported(args, tmp_path / "home", tmp_path) & HEAVY == set()


def test_check_reads_protobufs_without_tensorflow(saved_model: Path, tmp_path: Path) -> None:
    names = imported(["check", str(saved_model)], tmp_path / "home", tmp_path)
    assert names & HEAVY == set()
    assert names & CHECKER_ALLOWED  # it did parse the SavedModel


def test_commands_that_need_a_library_still_get_it(tmp_path: Path) -> None:
    """The guard above is not vacuous: `apply` parses YAML, so yaml shows up there."""
    manifest = tmp_path / "m.yaml"
    manifest.write_text("kind: Endpoint\n")
    assert "yaml" in imported(["apply", "-f", str(manifest)], tmp_path / "home", tmp_path)
