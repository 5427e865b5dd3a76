"""A scenario run against a running sandbox removes what it created, and only that."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandbox.engine import Sandbox
from sandbox.testing.runner import ScenarioRun
from sandbox.testing.scenario import load_scenario

pytest_plugins = ["pytester"]

SCENARIO = """
scenario: {name}
image: pytorch-cpu.2-4
artifact: {artifact}
check: {{codes: [mar.not-zip], ok: false}}
deploy: {{expect: failed, error_contains: "mar.not-zip"}}
"""


def _run(sandbox: Sandbox, folder: Path, name: str, artifact: str) -> ScenarioRun:
    path = folder / f"{name}.yaml"
    path.write_text(SCENARIO.format(name=name, artifact=artifact))
    run = ScenarioRun(load_scenario(path, yaml.safe_load(path.read_text())), path, sandbox)
    run.prepare()  # the deploy gate refuses the artifact, as the scenario expects
    return run


def _names(sandbox: Sandbox, prefix: str) -> list[str]:
    return [
        item["metadata"]["name"]
        for kind in ("DeployedModel", "Endpoint", "ResourcePool")
        for item in sandbox.get(kind)
        if item["metadata"]["name"].startswith(prefix)
    ]


def test_a_scenario_run_deletes_its_upload_and_its_resources(sandbox: Sandbox, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.mar").write_bytes(b"not a zip archive")
    run = _run(sandbox, tmp_path, "cleanup-demo", "broken/")
    assert sandbox.list_objects("s3://models/cleanup-demo/") != [] and _names(sandbox, "scn-cleanup-demo")
    run.cleanup()
    assert sandbox.list_objects("s3://models/cleanup-demo/") == []
    assert _names(sandbox, "scn-cleanup-demo") == []


def test_an_s3_artifact_is_deployed_in_place_and_kept(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "model.mar").write_bytes(b"not a zip archive")
    sandbox.upload(tmp_path / "model.mar", "s3://models/users-own/1", progress=False)
    run = _run(sandbox, tmp_path, "from-bucket", "s3://models/users-own/1")
    run.cleanup()
    assert [o["key"] for o in sandbox.list_objects("s3://models/users-own/")] == ["users-own/1/model.mar"]
    assert sandbox.list_objects("s3://models/from-bucket/") == [] and _names(sandbox, "scn-from-bucket") == []


def test_a_multi_image_scenario_runs_once_per_image(sandbox: Sandbox, pytester: pytest.Pytester) -> None:
    broken = pytester.path / "scenarios" / "broken"
    broken.mkdir(parents=True)
    (broken / "model.mar").write_bytes(b"not a zip archive")
    text = SCENARIO.format(name="two-images", artifact="broken/").replace(
        "image: pytorch-cpu.2-4", "images: [pytorch-cpu.2-4, pytorch-cpu.2-1]"
    )
    (pytester.path / "scenarios" / "two.yaml").write_text(text)
    home = str(sandbox.settings.home)
    result = pytester.runpytest_inprocess("scenarios", "--sandbox-home", home, "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*two.yaml::deploy[[]pytorch-cpu.2-4[]] PASSED*", "*two.yaml::deploy[[]pytorch-cpu.2-1[]] PASSED*"]
    )
    assert sandbox.list_objects("s3://models/two-images/") == [] and _names(sandbox, "scn-two-images") == []
