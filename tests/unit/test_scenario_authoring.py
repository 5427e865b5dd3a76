"""Mistakes in a scenario file are one line naming the file, the key and what is allowed; images fan out."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

GOOD = """
scenario: demo
image: tf2-cpu.2-18
build: models.py:real_builder
"""


def _write(pytester: pytest.Pytester, body: str, name: str = "scenarios/demo.yaml") -> None:
    path = pytester.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    (path.parent / "models.py").write_text(
        "import os\n\ndef real_builder(out_dir):\n    pass\n\ndef other(out_dir):\n    pass\n"
    )


def _failure_lines(result: pytest.RunResult) -> list[str]:
    """The lines between pytest's FAILURES banner and its short summary."""
    text = result.stdout.lines
    start = next(i for i, line in enumerate(text) if "FAILURES" in line)
    end = next(i for i, line in enumerate(text) if "short test summary" in line)
    return [line for line in text[start + 2 : end] if line.strip() and not line.startswith("____")]


def test_a_typo_in_a_key_is_one_line_with_the_allowed_keys(pytester: pytest.Pytester) -> None:
    _write(pytester, GOOD + "cases:\n  - name: one\n    instances: [[1]]\n    expect: {stauts: 200}\n")
    result = pytester.runpytest("scenarios")
    result.assert_outcomes(failed=1)
    lines = _failure_lines(result)
    assert len(lines) == 1, lines
    assert "demo.yaml: unknown key 'cases[0].expect.stauts'; allowed keys here: status, match_reference" in lines[0]
    assert "predictions_file" in lines[0]
    assert "pydantic" not in result.stdout.str() and "https://" not in result.stdout.str()


def test_a_missing_key_and_a_wrong_value_are_one_line_each(pytester: pytest.Pytester) -> None:
    _write(pytester, "image: tf2-cpu.2-18\nbuild: models.py:real_builder\ncheck: {ok: maybe}\n")
    result = pytester.runpytest("scenarios")
    lines = _failure_lines(result)
    assert any(
        "demo.yaml: 'scenario' is required; allowed keys here: scenario, description, image" in line for line in lines
    ), lines
    assert any("demo.yaml: check.ok: 'maybe' Input should be a valid boolean" in line for line in lines), lines
    assert len(lines) == 2 and "https://" not in result.stdout.str()
    _write(pytester, "scenario: demo\nbuild: models.py:real_builder\n")
    lines = _failure_lines(pytester.runpytest("scenarios"))
    assert len(lines) == 1 and "give exactly one of image: IMAGE or images: [IMAGE, ...]" in lines[0]


def test_build_and_artifact_together_are_refused(pytester: pytest.Pytester) -> None:
    _write(pytester, GOOD + "artifact: my_export/\n")
    lines = _failure_lines(pytester.runpytest("scenarios"))
    assert lines == [lines[0]] and "give exactly one of build: (FILE.py:FUNCTION) or artifact:" in lines[0]


def test_a_wrong_builder_name_is_one_line_listing_the_functions(pytester: pytest.Pytester) -> None:
    _write(pytester, GOOD.replace("real_builder", "real_bulider"))
    result = pytester.runpytest("scenarios", "--sandbox-home", str(pytester.path / "no-sandbox-here"))
    result.assert_outcomes(failed=1)
    lines = _failure_lines(result)
    assert lines == [
        f"error[scenario.invalid]: {pytester.path / 'scenarios/demo.yaml'}: build: 'models.py:real_bulider': "
        "models.py has no function 'real_bulider'; its functions: other, real_builder"
    ]
    assert not (pytester.path / "no-sandbox-here").exists()  # reported before any sandbox was started


def test_a_builder_file_that_is_missing_is_one_line(pytester: pytest.Pytester) -> None:
    _write(pytester, GOOD.replace("models.py", "model.py"))
    lines = _failure_lines(pytester.runpytest("scenarios"))
    assert len(lines) == 1 and "build: 'model.py:real_builder': there is no model.py next to the scenario" in lines[0]


def test_a_multi_image_scenario_yields_one_item_per_image(pytester: pytest.Pytester) -> None:
    _write(
        pytester,
        """
        scenario: demo
        images: [tf2-cpu.2-14, tf2-cpu.2-18]
        artifact: my_export/
        cases:
          - name: one
            instances: [[1.0]]
          - name: two
            instances: [[2.0]]
        """,
    )
    result = pytester.runpytest("scenarios", "--collect-only", "-q")
    assert [line for line in result.stdout.lines if "::" in line] == [
        "scenarios/demo.yaml::one[tf2-cpu.2-14]",
        "scenarios/demo.yaml::two[tf2-cpu.2-14]",
        "scenarios/demo.yaml::one[tf2-cpu.2-18]",
        "scenarios/demo.yaml::two[tf2-cpu.2-18]",
    ]


def test_files_repro_writes_are_collected_anywhere(pytester: pytest.Pytester) -> None:
    _write(pytester, GOOD, name="repro-out/scenario/scenario.yaml")
    (pytester.path / "repro-out" / "other.yaml").write_text("not: a scenario\n")
    (pytester.path / "repro-out" / "scenario-of-another-tool.yaml").write_text("stages: [load]\n")
    result = pytester.runpytest("repro-out", "--collect-only", "-q")
    assert [line for line in result.stdout.lines if "::" in line] == ["repro-out/scenario/scenario.yaml::deploy"]
