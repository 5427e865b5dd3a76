"""The scenario repro writes: one file for images that behaved alike, one per image otherwise."""

from __future__ import annotations

from pathlib import Path

import yaml

from sandbox.repro.probe import Probe
from sandbox.repro.report import stable_fragment, write_scenario
from sandbox.repro.run import ImageRun, Repro
from sandbox.testing.scenario import load_scenario


def _run(image: str, predictions: list[list[float]], codes: tuple[str, ...] = ()) -> ImageRun:
    diagnostics = [{"code": c, "severity": "warning", "message": "", "hint": "", "path": ""} for c in codes]
    return ImageRun(
        image,
        check={"ok": True, "diagnostics": diagnostics},
        deployed=True,
        status=200,
        answer={"predictions": predictions},
    )


def _repro(tmp_path: Path, *runs: ImageRun) -> Repro:
    return Repro(
        "export/", "folder", "export", "", tmp_path, "artifact/export", Probe([[1.0]], "given"), True, images=list(runs)
    )


def test_images_that_answer_alike_share_one_scenario(tmp_path: Path) -> None:
    repro = _repro(tmp_path, _run("tf2-cpu.2-14", [[0.5000001]]), _run("tf2-cpu.2-18", [[0.5]]))
    [path] = write_scenario(repro, tmp_path)
    scenario = load_scenario(path, yaml.safe_load(path.read_text()))
    assert path.name == "scenario.yaml" and scenario.images == ["tf2-cpu.2-14", "tf2-cpu.2-18"]
    assert scenario.cases[0].expect.predictions == [[0.5000001]] and scenario.deploy.force is True


def test_images_that_differ_get_a_scenario_each(tmp_path: Path) -> None:
    repro = _repro(tmp_path, _run("tf2-cpu.2-14", [[0.5]], ("tf.newer-than-image",)), _run("tf2-cpu.2-18", [[0.5]]))
    paths = write_scenario(repro, tmp_path)
    assert [p.name for p in paths] == ["scenario-tf2-cpu-2-14.yaml", "scenario-tf2-cpu-2-18.yaml"]
    first = load_scenario(paths[0], yaml.safe_load(paths[0].read_text()))
    assert first.image == "tf2-cpu.2-14" and first.check is not None and first.check.codes == ["tf.newer-than-image"]


def test_long_predictions_go_to_a_file_next_to_the_scenario(tmp_path: Path) -> None:
    [path] = write_scenario(_repro(tmp_path, _run("tf2-cpu.2-18", [[0.25] * 1000])), tmp_path)
    expect = load_scenario(path, yaml.safe_load(path.read_text())).cases[0].expect
    assert expect.predictions is None and expect.predictions_file == "scenario-predictions.json"
    assert (tmp_path / "scenario-predictions.json").read_text().startswith("[[0.25, 0.25")


def test_error_text_is_cut_before_what_changes_between_runs() -> None:
    assert (
        stable_fragment("Failed to load model model, exception /tmp/gdcs-1/x.py")
        == "Failed to load model model, exception"
    )
    assert stable_fragment("endpoint repro-x-1234567 failed") == ""  # too little left to be worth matching
    assert stable_fragment("ModuleNotFoundError: No module named 'pkg'") == "ModuleNotFoundError: No module named 'pkg'"


def test_expected_error_text_matches_as_a_person_reads_it() -> None:
    from sandbox.testing.runner import _carries

    answer = {"error": {"message": 'Serving signature name: "serving_default" not found in signature def'}}
    assert _carries(answer, 'Serving signature name: "serving_default" not found')  # quotes as printed
    assert _carries(answer, 'Serving signature name: \\"serving_default\\"')  # the JSON text, as before
    assert not _carries(answer, "Could not find variable")


def test_the_report_leads_with_the_verdict_and_flags_a_checker_that_disagrees(tmp_path: Path) -> None:
    from sandbox.repro.report import markdown

    served = _run("tf2-cpu.2-14", [[0.5]])
    served.check = {
        "ok": False,
        "diagnostics": [{"code": "tf.attr-unsupported", "severity": "error", "message": "m", "hint": "h", "path": ""}],
    }
    text = markdown(_repro(tmp_path, served, _run("tf2-cpu.2-18", [[0.5]])))
    assert text.splitlines()[2] == "**Verdict: tf2-cpu.2-14: SERVES (HTTP 200); tf2-cpu.2-18: SERVES (HTTP 200)**"
    assert "| tf2-cpu.2-14 | tf.attr-unsupported | ready | HTTP 200 | serves |" in text
    assert "**tf2-cpu.2-14: the checker reports errors, yet the image serves.**" in text
    assert "tf2-cpu.2-18: the checker" not in text
