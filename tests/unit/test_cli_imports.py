"""What each CLI command imports in a new process (``python -X importtime``): the start-up path of the commands
people run in loops stays free of the heavy libraries, and `check` (run by pre-commit hooks, bench/check_bench.py
holds it to 40x faster than saved_model_cli) of everything it does not use. A test of what is imported, not of how
long it takes; and of the one-command parser `main` builds, which must parse and print as the whole one does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import cli
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
    "httptools",
    "yaml",
}
#: What the preflight checker needs besides the standard library: it reads protobufs without TensorFlow.
CHECKER_ALLOWED = {"google"}
#: Modules `check DIR` loads only where they are used (or never): each costs the check a few milliseconds.
CHECK_LAZY = {
    "dataclasses",  # with inspect, dis, ast, tokenize: the biggest import of all; the checker's records are not
    "inspect",
    "shutil",  # argparse sizes its help with it; cli.HelpFormatter does without
    "json",  # only for --format json
    "tempfile",  # only for s3:// targets
    "tarfile",  # only for archives
    "zipfile",
    "google.protobuf.descriptor_pb2",  # the schema ships serialized (sandbox/data/tf_subset.desc)
    "google.protobuf.descriptor_pool",  # pulls python_message and text_format; upb builds the classes directly
    "google.protobuf.internal.python_message",
    "google.protobuf.text_format",  # only for saved_model.pbtxt
    "sandbox.settings",  # a local check reads no GDC_SANDBOX_* setting
    "sandbox.kubectl",
    "sandbox.kinds",
    "sandbox.uri",
    "sandbox.outcomes",
    "sandbox.artifacts.mar",  # the other framework's checks
}


def imported(args: list[str], home: Path, cwd: Path, dotted: bool = False) -> set[str]:
    """Top-level modules (every module with ``dotted``) a new ``python -m sandbox.cli ARGS`` process imports
    (from ``-X importtime``)."""
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
            name = line.rsplit("|", 1)[1].strip()
            names.add(name if dotted else name.split(".")[0])
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


def test_check_loads_only_what_it_uses(saved_model: Path, tmp_path: Path) -> None:
    names = imported(["check", str(saved_model)], tmp_path / "home", tmp_path, dotted=True)
    assert names & CHECK_LAZY == set()
    assert {"sandbox.artifacts.savedmodel", "sandbox.artifacts.tfproto"} <= names  # it did check the SavedModel


def test_check_still_loads_what_an_option_or_artifact_needs(saved_model: Path, tmp_path: Path) -> None:
    """The guard above is not vacuous: the lazy modules load when the check needs them."""
    home = tmp_path / "home"
    assert "json" in imported(["check", str(saved_model), "--format", "json"], home, tmp_path, dotted=True)
    pbtxt = tmp_path / "pbtxt"
    pbtxt.mkdir()
    (pbtxt / "saved_model.pbtxt").write_text(tfproto.to_text(tfproto.SavedModel()))
    assert "google.protobuf.text_format" in imported(["check", str(pbtxt)], home, tmp_path, dotted=True)
    assert {"sandbox.kubectl", "sandbox.settings"} <= imported(["get", "deployedmodels"], home, tmp_path, dotted=True)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.mar").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    assert {"zipfile", "sandbox.artifacts.mar"} <= imported(["check", str(tmp_path / "m")], home, tmp_path, dotted=True)


def _printed(argv: list[str], parser_for: str | None, capsys: pytest.CaptureFixture[str]) -> tuple[str, str, object]:
    with pytest.raises(SystemExit) as exit_info:
        cli.build_parser(parser_for).parse_args(argv)
    out, err = capsys.readouterr()
    return out, err, exit_info.value.code


#: A valid command line of some commands, to compare what the two parsers make of it.
VALID = [
    ["check", "export/", "--image", "tf2-cpu.2-14", "--format", "json", "--kubeconfig", "k"],
    ["get", "deployedmodel", "m", "-o", "jsonpath={.status}", "-n", "p"],
    ["deploy", "s3://models/m/1", "--image", "tf2-cpu.2-18", "--traffic", "10", "--no-wait"],
    ["runtimes", "install", "pytorch-cpu.2-4", "--from", "wheels/"],
    ["status"],
]


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_one_command_parser_prints_as_the_whole_one(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`main` builds only the parser of the command given first; its help and usage errors stay the same."""
    for argv in ([command, "--help"], [command, "--no-such-option"], [command, "--kubeconfig"]):
        assert _printed(argv, command, capsys) == _printed(argv, None, capsys), argv


@pytest.mark.parametrize("columns", ["", "57", "0", "wide"])
def test_help_is_as_wide_as_argparse_makes_it(columns: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    monkeypatch.setenv("COLUMNS", columns)
    assert cli.terminal_columns() == shutil.get_terminal_size().columns


def test_whole_parser_for_anything_else(capsys: pytest.CaptureFixture[str]) -> None:
    """No command, an unknown one or an option first: `main` builds the whole parser, whose errors name them all."""
    for argv, said in (([], "required: command"), (["chek"], "argument command: invalid choice: 'chek'")):
        with pytest.raises(SystemExit):
            cli.main(argv)
        err = capsys.readouterr().err
        assert said in err and "{up,down,status," in err, err
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(f"    {name} " in out for name in cli.COMMANDS), out


def test_main_called_in_a_process_leaves_its_garbage_collector_alone(capsys: pytest.CaptureFixture[str]) -> None:
    """`program` (the console script) freezes what is imported at start; `main`, which tests and tools call in their
    own process, must not: frozen objects are never collected."""
    import gc

    frozen = gc.get_freeze_count()
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    capsys.readouterr()
    assert gc.get_freeze_count() == frozen


@pytest.mark.parametrize("argv", VALID, ids=lambda a: a[0])
def test_one_command_parser_parses_as_the_whole_one(argv: list[str]) -> None:
    assert vars(cli.build_parser(argv[0]).parse_args(argv)) == vars(cli.build_parser().parse_args(argv))
