"""`gdc-sandbox repro` and `scenario new` on good and broken artifacts, as folders, archives, .mar files and s3 URIs.

Most runs use the session's sandbox (`--use-running`) to save start-ups, and prove that they leave nothing
behind in it; one run uses its own private sandbox on two images.
"""

from __future__ import annotations

import json
import shlex
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.engine import Sandbox
from sandbox.testing.scenario import load_scenario
from tests.integration.conftest import close

pytestmark = pytest.mark.slow
pytest_plugins = ["pytester"]

Cli = Callable[..., tuple[int, str, str]]


def _tgz(folder: Path, dest: Path) -> Path:
    """A customer's archive: the version folder wrapped in a folder of its own."""
    with tarfile.open(dest, "w:gz") as tf:
        tf.add(folder, arcname="export")
    return dest


def _repro(cli: Cli, source: Path | str, out: Path, *images: str, extra: tuple[str, ...] = ()) -> tuple[int, dict]:
    args = [a for image in images for a in ("--image", image)]
    code, stdout, err = cli("repro", str(source), *args, "--use-running", "--out", str(out), *extra)
    assert code in (0, 1), err
    report = json.loads((out / "report.json").read_text())
    assert report["exit_code"] == code
    assert stdout.splitlines()[0] == report["verdict"]
    return code, report


def _assert_nothing_left(sandbox: Sandbox) -> None:
    assert sandbox.list_objects("s3://models/repro-") == []
    for kind in ("DeployedModel", "Endpoint", "ResourcePool"):
        assert [i["metadata"]["name"] for i in sandbox.get(kind) if i["metadata"]["name"].startswith("repro-")] == []


def _resources(sandbox: Sandbox) -> dict[str, list[tuple[Any, Any]]]:
    """Each DeployedModel and Endpoint as written (metadata, spec). Not the status: the running sandbox's autoscaler
    rewrites the measured CPU of whatever another test left serving there at any moment."""
    return {kind: [(r["metadata"], r["spec"]) for r in sandbox.get(kind)] for kind in ("DeployedModel", "Endpoint")}


def _pytest(pytester: pytest.Pytester, sandbox: Sandbox, scenario: Path) -> pytest.RunResult:
    return pytester.runpytest_inprocess(
        str(scenario), "--sandbox-home", str(sandbox.settings.home), "-p", "no:cacheprovider"
    )


@pytest.mark.tfserving
def test_a_good_tf_export_serves_from_a_folder_an_archive_and_the_bucket(
    cli: Cli, sandbox: Sandbox, tf_model: tuple[Path, Any], tmp_path: Path
) -> None:
    folder, reference = tf_model
    sandbox.upload(folder, "s3://models/customer-tf/7", progress=False)
    for source in (folder, _tgz(folder, tmp_path / "export.tgz"), "s3://models/customer-tf/7"):
        out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
        code, report = _repro(cli, source, out, "tf2-cpu.2-18")
        run = report["images"][0]
        assert code == 0 and run["verdict"] == "serves" and run["check"]["ok"] is True
        assert report["request"]["instances"] == [[0.5, 0.5, 0.5, 0.5]]
        assert close(run["answer"]["predictions"], reference([[0.5, 0.5, 0.5, 0.5]]))
        assert run["versions"]["tensorflow-cpu"].startswith("2.18.") and run["logs"]
        assert (out / run["logs"][0]).read_text()
        markdown = (out / "report.md").read_text()
        assert markdown.splitlines()[2] == "**Verdict: tf2-cpu.2-18: SERVES (HTTP 200)**"
        assert "## Re-run" in markdown and "pytest " in markdown
        for line in report["rerun"]:  # each re-run `check` gives the verdict the report gives
            if line.startswith("gdc-sandbox check "):
                assert cli(*shlex.split(line)[1:])[0] == 0, line
        _assert_nothing_left(sandbox)
    assert len(sandbox.list_objects("s3://models/customer-tf/7/")) > 0  # the user's own upload is untouched


@pytest.mark.tfserving
def test_scenario_new_passes_and_fails_when_the_export_changes(
    cli: Cli, sandbox: Sandbox, tf_model: tuple[Path, Any], tmp_path: Path, pytester: pytest.Pytester
) -> None:
    import keras

    export = tmp_path / "my_export"
    shutil.copytree(tf_model[0], export)
    target = tmp_path / "scenarios" / "mine.yaml"
    code, out, err = cli(
        "scenario", "new", str(export), "--image", "tf2-cpu.2-18", "--use-running", "--out", str(target)
    )
    assert code == 0, err
    assert f"wrote {target}" in out
    scenario = target.read_text()
    assert "artifact: ../my_export\n" in scenario and "predictions:" in scenario
    _assert_nothing_left(sandbox)
    _pytest(pytester, sandbox, target).assert_outcomes(passed=1)
    doc = yaml.safe_load(scenario)  # the same expectation, kept in a file next to the scenario
    expect = doc["cases"][0]["expect"]
    (target.parent / "expected.json").write_text(json.dumps(expect.pop("predictions")))
    expect["predictions_file"] = "expected.json"
    target.write_text(yaml.safe_dump(doc))
    _pytest(pytester, sandbox, target).assert_outcomes(passed=1)
    keras.utils.set_random_seed(1)  # a re-export with other weights: same signature, other numbers
    shutil.rmtree(export)
    from sandbox.export import export_tensorflow

    export_tensorflow(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), export)
    result = _pytest(pytester, sandbox, target)
    result.assert_outcomes(failed=1)
    assert "predictions differ from the expected values" in result.stdout.str()


@pytest.mark.tfserving
def test_a_broken_savedmodel_does_not_serve_and_its_scenario_holds_it(
    cli: Cli, sandbox: Sandbox, tf_model: tuple[Path, Any], tmp_path: Path, pytester: pytest.Pytester
) -> None:
    broken = tmp_path / "partial_upload"
    shutil.copytree(tf_model[0], broken)
    shutil.rmtree(broken / "variables")  # a partial upload: saved_model.pb without its variables
    for source in (broken, _tgz(broken, tmp_path / "partial.tar.gz")):
        out = tmp_path / f"out-{source.name}"
        code, report = _repro(cli, source, out, "tf2-cpu.2-18")
        run = report["images"][0]
        assert code == 1 and run["verdict"] == "does not serve"
        assert "tf.variables-missing" in [d["code"] for d in run["check"]["diagnostics"]]
        # TF Serving loads a SavedModel without variables ("no checkpoints were restored"); every predict fails
        assert run["deployed"] and run["status"] == 400
        assert "Could not find variable" in run["answer"]["error"]["message"]
        assert "DOES NOT SERVE (predict answered HTTP 400)" in (out / "report.md").read_text().splitlines()[2]
        _assert_nothing_left(sandbox)
    scenario = out / "scenario" / "scenario.yaml"
    assert "error_contains: Could not find variable" in scenario.read_text()
    _pytest(pytester, sandbox, scenario).assert_outcomes(passed=1)
    fixed = out / "scenario" / "artifact" / "partial.tar.gz"
    _tgz(tf_model[0], fixed)  # the customer sends the fixed export: the bug scenario must notice
    result = _pytest(pytester, sandbox, scenario)
    result.assert_outcomes(failed=1)
    assert "the preflight checker did not report what the scenario expects" in result.stdout.str()


@pytest.mark.torchserve
def test_a_good_mar_serves_with_a_probe_as_wide_as_its_first_layer(
    cli: Cli, sandbox: Sandbox, torch_model: tuple[Path, Any], tmp_path: Path
) -> None:
    folder, reference = torch_model
    for source in (folder / "model.mar", _tgz(folder, tmp_path / "torch.tgz")):
        out = tmp_path / f"out-{source.name}"
        code, report = _repro(cli, source, out, "pytorch-cpu.2-4")
        run = report["images"][0]
        assert code == 0 and run["verdict"] == "serves", report["verdict"]
        assert report["request"]["instances"] == [[0.5] * 4] and "base_handler" in report["request"]["how"]
        assert close(run["answer"]["predictions"], reference([[0.5] * 4]), atol=1e-6)
        assert run["versions"]["torchserve"] and run["versions"]["torch"] and "version" in run["versions"]["java"]
        _assert_nothing_left(sandbox)


@pytest.mark.torchserve
def test_a_broken_mar_does_not_serve_from_the_file_or_an_archive(
    cli: Cli, sandbox: Sandbox, torch_model: tuple[Path, Any], tmp_path: Path, pytester: pytest.Pytester
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(torch_model[0] / "model.mar", bad / "mnist.mar")  # GDC's image loads only model.mar
    for source in (bad / "mnist.mar", _tgz(bad, tmp_path / "mnist.tgz")):
        out = tmp_path / f"out-{source.name}"
        code, report = _repro(cli, source, out, "pytorch-cpu.2-4", extra=("--instances", "[[1, 2, 3, 4]]"))
        run = report["images"][0]
        assert code == 1 and not run["deployed"] and report["request"]["given"] is True
        assert [d["code"] for d in run["check"]["diagnostics"]][:1] == ["mar.wrong-filename"]
        _assert_nothing_left(sandbox)
    _pytest(pytester, sandbox, out / "scenario" / "scenario.yaml").assert_outcomes(passed=1)


@pytest.mark.tfserving
def test_a_private_sandbox_compares_two_images_and_leaves_the_running_one_alone(
    cli: Cli, sandbox: Sandbox, tf_model: tuple[Path, Any], tmp_path: Path
) -> None:
    before = _resources(sandbox)
    objects = sandbox.list_objects("s3://models")
    out = tmp_path / "report"
    code, _, err = cli(
        "repro", str(tf_model[0]), "--image", "tf2-cpu.2-14", "--image", "tf2-cpu.2-18", "--out", str(out)
    )
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["sandbox"] == "a private sandbox"
    assert [(r["image"], r["verdict"]) for r in report["images"]] == [
        ("tf2-cpu.2-14", "serves"),
        ("tf2-cpu.2-18", "serves"),
    ]
    assert report["images"][0]["versions"]["tensorflow-cpu"].startswith("2.14.")
    first, second = (r["answer"]["predictions"] for r in report["images"])
    assert close(first, second)
    assert _resources(sandbox) == before and sandbox.list_objects("s3://models") == objects
    written = [load_scenario(p, yaml.safe_load(p.read_text())) for p in sorted((out / "scenario").glob("*.yaml"))]
    assert sorted(image for scenario in written for image in scenario.all_images) == ["tf2-cpu.2-14", "tf2-cpu.2-18"]
