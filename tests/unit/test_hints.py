"""Every hint leads somewhere: each command a hint (or the docs) names is one the CLI or Makefile accepts.

The catalog in sandbox/diagnostics.py, the errors raised anywhere under sandbox/ and the docs are scanned
for ``gdc-sandbox SUBCOMMAND ...`` and ``make TARGET``; each is parsed with the real argument parser. What
the commands then do is exercised in tests/integration/test_messages.py.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from sandbox.cli import build_parser
from sandbox.diagnostics import CODES
from sandbox.images import IMAGES, newest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*sorted((ROOT / "sandbox").rglob("*.py")), ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A command, not prose: after a backtick, a quote (a hint that is a command line), `.venv/bin/` or a line start.
COMMAND = re.compile(r"(?:(?<=`)|(?<=\")|(?<=/bin/)|^)gdc-sandbox ([a-z][a-z-]*(?: [^`'\"\n;)]*)?)", re.M)
MAKE = re.compile(r"`make ([a-z][\w-]*)")


def named_commands() -> list[tuple[str, str]]:
    found = []
    for path in SOURCES:
        text = path.read_text()
        found += [(f"{path.relative_to(ROOT)}", m.group(1).strip().rstrip(".,:")) for m in COMMAND.finditer(text)]
    found += [(f"CODES[{code}]", m.group(1)) for code, info in CODES.items() for m in COMMAND.finditer(info.hint)]
    return sorted(set(found))


def test_the_scan_finds_the_hints_that_name_commands() -> None:
    texts = {command.split()[0] for _, command in named_commands()}
    assert {"mb", "iam", "check", "ls", "status", "upload", "deploy", "predict"} <= texts


@pytest.mark.parametrize(("where", "command"), named_commands())
def test_every_named_gdc_sandbox_command_and_flag_exists(where: str, command: str) -> None:
    """Prose names a command (`gdc-sandbox check`) or a command line: its subcommand, action and every flag
    must be ones the CLI has."""
    command = re.split(r"\s#|\s\|\s", command)[0]  # a shell comment or pipe ends the command
    tokens = command.split()
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    sub = subparsers.choices.get(tokens[0])
    assert sub is not None, f"{where}: `gdc-sandbox {command}`: there is no command {tokens[0]!r}"
    flags = [t.split("=")[0] for t in tokens[1:] if t.startswith("-")]
    nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
    if nested and len(tokens) > 1 and tokens[1] in nested[0].choices:  # `runtimes install --from`: the action's flags
        sub = nested[0].choices[tokens[1]]
        tokens = tokens[1:]
    unknown = [f for f in flags if f.strip("[]") not in sub._option_string_actions]
    assert not unknown, f"{where}: `gdc-sandbox {command}`: {tokens[0]} has no option {unknown}"
    actions = [a for a in sub._actions if a.choices and not a.option_strings]
    if actions and len(tokens) > 1 and not tokens[1].startswith("-"):
        alternatives = tokens[1].replace("\\", "").split("|")
        assert set(alternatives) <= set(actions[0].choices), f"{where}: `{command}`: no action {tokens[1]!r}"


def test_every_named_make_target_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = {m.group(1) for path in SOURCES for m in MAKE.finditer(path.read_text())}
    assert targets, "the scan found no `make ...`"
    for target in targets:
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"`make {target}` has no Makefile target"


def test_hints_name_no_compose_path_the_control_plane_does_not_drive() -> None:
    hints = [info.hint for info in CODES.values()]
    assert not [h for h in hints if "compose" in h.lower()]
    from sandbox.control import deployer

    assert "Compose" not in Path(deployer.__file__).read_text()


def test_a_deprecated_image_points_to_a_supported_image_of_the_same_kind() -> None:
    for image in IMAGES.values():
        for note in image.warnings():
            if "move to" in note:
                target = IMAGES[note.rsplit(" ", 1)[-1]]
                assert (target.framework, target.accelerator) == (image.framework, image.accelerator), note
                assert not target.deprecated and target.native
    assert "pytorch-gpu.2-4" in IMAGES["pytorch-gpu.2-1"].warnings()[0]
    assert newest("torch", accelerator=True).name == "pytorch-gpu.2-4"


def test_catalog_hints_that_were_dead_ends_now_give_the_step() -> None:
    assert "--model-name model" in CODES["mar.wrong-filename"].hint
    assert "modelName" in CODES["mar.wrong-filename"].hint  # renaming alone is not enough
    b64 = CODES["tf.string-input-b64"].hint
    assert "plain JSON strings" in b64 and "binary" in b64  # plain text is not base64'd
