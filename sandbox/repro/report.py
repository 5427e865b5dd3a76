"""Write a reproduction down: ``report.md`` (verdict first), ``report.json``, ``request.json`` and the scenario.

The scenario (``scenario/scenario.yaml`` next to ``scenario/artifact/``) expects exactly what happened:
the checker's codes, the deploy outcome with the model server's own failure line, and the probe's answer.
It passes while the behaviour is unchanged and fails when it changes.
"""

from __future__ import annotations

import json
import re
import shlex
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from sandbox.repro.run import FAILS, SCENARIO_DIR, SERVES, ImageRun, Repro
from sandbox.testing.runner import values_close

TOLERANCE = 1e-4
"""atol and rtol of the expected predictions: images and CPUs differ in the last digits, not more."""
INLINE_LIMIT = 2000
"""Expected predictions longer than this (as JSON) go to a file next to the scenario."""
_KINDS = {"folder": "a version folder", "archive": "an archive", "mar": "a .mar file", "s3": "a bucket version"}
_DM_PREFIX = re.compile(r"^DeployedModel \S+ failed: ")
_VOLATILE = re.compile(r"(/|\\\\|\b\d{6,}\b|\brepro-[a-z0-9-]+|\bdefault-repro-|0x[0-9a-f]{6,})")


def write(result: Repro) -> None:
    """Write every file of the reproduction into ``result.out``."""
    out = result.out
    if result.probe.instances is not None:
        (out / "request.json").write_text(json.dumps({"instances": result.probe.instances}, indent=1) + "\n")
    (out / "report.json").write_text(json.dumps(to_dict(result), indent=2, default=str) + "\n")
    (out / "report.md").write_text(markdown(result))
    write_scenario(result, out / SCENARIO_DIR)


def to_dict(result: Repro) -> dict[str, Any]:
    data = {k: v for k, v in asdict(result).items() if k not in ("images", "out", "probe")}
    data.update(
        verdict=verdict_line(result),
        exit_code=result.exit_code,
        out=str(result.out),
        request={"instances": result.probe.instances, "how": result.probe.how, "given": result.instances_given},
        images=[{"verdict": run.verdict, **asdict(run)} for run in result.images],
        rerun=rerun_commands(result),
    )
    return data


def verdict_line(result: Repro) -> str:
    return "; ".join(f"{run.image}: {run.verdict.upper()}{_why(run)}" for run in result.images)


def _why(run: ImageRun) -> str:
    if run.deploy_error:
        said = run.server_errors[0] if run.server_errors else _DM_PREFIX.sub("", run.deploy_error["message"])
        return f" (deploy failed: {said[:300]})"
    if run.verdict == FAILS:
        return f" (predict answered HTTP {run.status})"
    if run.verdict == SERVES:
        return f" (HTTP {run.status})"
    return ""


def markdown(result: Repro) -> str:
    lines = [f"# Reproduction of {result.source}", "", f"**Verdict: {verdict_line(result)}**", ""]
    lines += [
        f"- source: `{result.source}` ({_KINDS[result.kind]}{'; ' + result.note if result.note else ''})",
        f"- framework: {result.framework or 'unknown'}; run {result.started} in {result.sandbox}",
        f"- request: {result.probe.how}",
        "",
    ]
    lines += ["| image | checker | deploy --force | predict | verdict |", "|---|---|---|---|---|"]
    for run in result.images:
        errors = [d["code"] for d in run.check.get("diagnostics", []) if d["severity"] == "error"]
        deploy = "ready" if run.deployed else f"failed ({run.deploy_error['code'] if run.deploy_error else '-'})"
        predict = "-" if run.status is None else f"HTTP {run.status}"
        lines.append(f"| {run.image} | {', '.join(errors) or 'ok'} | {deploy} | {predict} | {run.verdict} |")
    lines.append("")
    for run in result.images:
        ok = bool(run.check.get("ok"))
        if (not ok and run.verdict == SERVES) or (ok and not run.deployed):
            said = "reports errors, yet the image serves" if run.deployed else "finds no error, yet the deploy fails"
            lines += [f"**{run.image}: the checker {said}.** One of them is wrong: please report it.", ""]
    for run in result.images:
        lines += _image_section(result, run)
    lines += ["## Re-run", "", "```", *rerun_commands(result), "```", ""]
    return "\n".join(lines)


def _image_section(result: Repro, run: ImageRun) -> list[str]:
    lines = [f"## {run.image}: {run.verdict}", "", "### Checker", ""]
    diags = run.check.get("diagnostics", [])
    lines += [
        f"- {d['severity']}[{d['code']}] {d['message']}" + (f"  \n  Hint: {d['hint']}" if d["hint"] else "")
        for d in diags
    ] or ["- no problems found"]
    lines += ["", "### Model server", ""]
    if run.deploy_error:
        error = run.deploy_error
        lines += [f"deploy --force failed: error[{error['code']}]: {error['message']}", ""]
    else:
        lines += ["deploy --force: ready", ""]
    if run.server_errors:
        lines += ["The model server's own failure lines:", "", "```", *run.server_errors, "```", ""]
    lines += ["### Prediction", ""]
    if run.status is None:
        lines += ["not tried: " + ("the model is not deployed" if not run.deployed else result.probe.how), ""]
    else:
        lines += [f"HTTP {run.status}", "", "```json", _short_json(run.answer), "```", ""]
    timings = ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in run.timings.items())
    lines += ["### Timings", "", timings or "-", "", "### Versions", ""]
    lines += [f"- {k}: {v}" for k, v in run.versions.items()]
    lines += ["", "### Logs", ""] + ([f"- {log}" for log in run.logs] or ["- none written"]) + [""]
    return lines


def _short_json(value: Any, limit: int = 4000) -> str:
    text = json.dumps(value)
    text = text if len(text) <= 200 else json.dumps(value, indent=1)
    return text if len(text) <= limit else text[:limit] + "\n... (truncated; full answer in report.json)"


def rerun_commands(result: Repro) -> list[str]:
    out = result.out
    artifact = shlex.quote(str(out / SCENARIO_DIR / result.artifact))
    images = " ".join(f"--image {run.image}" for run in result.images)
    request = (
        f" --instances-file {shlex.quote(str(out / 'request.json'))}" if result.probe.instances is not None else ""
    )
    checks = [f"gdc-sandbox check {artifact} --image {run.image}" for run in result.images]
    if result.kind == "archive":  # `check ARCHIVE` judges the archive as an upload (layout.nested), not its content
        checks = [
            f"# `gdc-sandbox check` judges a version folder: extract {artifact} first (repro checked it extracted)"
        ]
    commands = [
        f"gdc-sandbox repro {artifact} {images}{request}",
        *checks,
        f"pytest {shlex.quote(str(out / SCENARIO_DIR / 'scenario.yaml'))}",
        f"cp -r {shlex.quote(str(out / SCENARIO_DIR))} scenarios/bugs/{result.name}   # keep it as a regression test",
    ]
    return commands


# -- scenario ------------------------------------------------------------------------------------
def write_scenario(
    result: Repro, folder: Path, stem: str = "scenario", made_by: str = "gdc-sandbox repro"
) -> list[Path]:
    """``folder/STEM.yaml`` expecting exactly what every image did; images that behaved differently get
    one file each (``STEM-IMAGE.yaml``). Returns the files written."""
    groups: list[list[ImageRun]] = []
    for run in result.images:
        mine = _expectations(result, run)
        same = next((g for g in groups if values_close(_expectations(result, g[0]), mine, TOLERANCE, TOLERANCE)), None)
        if same is None:
            groups.append([run])
        else:
            same.append(run)
    written = []
    for runs in groups:
        suffix = "" if len(groups) == 1 else "-" + runs[0].image.replace(".", "-")
        doc: dict[str, Any] = {
            "scenario": f"{result.name}{suffix}"[:41].strip("-"),
            "description": f"Written by `{made_by} {result.source}` on {result.started}: "
            + "; ".join(f"{run.image}: {run.verdict}" for run in runs),
            "artifact": result.artifact,
        }
        doc.update({"images": [run.image for run in runs]} if len(runs) > 1 else {"image": runs[0].image})
        doc.update(_expectations(result, runs[0]))
        for case in doc.get("cases", []):
            expect = case["expect"]
            if len(json.dumps(expect.get("predictions"))) > INLINE_LIMIT:
                name = f"{stem}{suffix}-predictions.json"
                (folder / name).write_text(json.dumps(expect.pop("predictions")) + "\n")
                expect["predictions_file"] = name
        path = folder / f"{stem}{suffix}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False, width=110, default_flow_style=None))
        written.append(path)
    return written


def _expectations(result: Repro, run: ImageRun) -> dict[str, Any]:
    codes = [d["code"] for d in run.check.get("diagnostics", []) if d["severity"] in ("error", "warning")]
    doc: dict[str, Any] = {"check": {"codes": codes, "ok": bool(run.check.get("ok"))}}
    deploy: dict[str, Any] = {"force": True, "expect": "ready" if run.deployed else "failed"}
    if run.deploy_error:
        said = run.server_errors[0] if run.server_errors else _DM_PREFIX.sub("", run.deploy_error["message"])
        fragment = stable_fragment(said)
        if fragment:
            deploy["error_contains"] = [fragment]
    doc["deploy"] = deploy
    if run.status is None or result.probe.instances is None:
        return doc
    expect: dict[str, Any] = {"status": run.status}
    if run.status < 400:
        expect["predictions"] = run.answer.get("predictions") if isinstance(run.answer, dict) else run.answer
        expect.update(atol=TOLERANCE, rtol=TOLERANCE)
    else:
        fragment = stable_fragment(_error_message(run.answer))
        if fragment:
            expect["error_contains"] = fragment
    doc["cases"] = [{"name": "probe", "instances": result.probe.instances, "expect": expect}]
    return doc


def _error_message(answer: Any) -> str:
    if isinstance(answer, dict):
        error = answer.get("error", answer)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("error") or "")
        return str(error)
    return str(answer)


def stable_fragment(text: str, limit: int = 100) -> str:
    """The start of an error line up to anything that changes between runs (paths, names, host, long numbers)."""
    text = text.replace(socket.gethostname(), "/")
    cut = _VOLATILE.search(text)
    fragment = (text[: cut.start()] if cut else text)[:limit]
    fragment = fragment.rsplit(" ", 1)[0] if cut or len(text) > limit else fragment
    fragment = fragment.strip(" (:,")
    return fragment if len(fragment) >= 12 else ""
