"""Benchmark the preflight checker.

1. One SavedModel: ``gdc-sandbox check DIR`` in a new process (what users and pre-commit hooks run) against
   ``saved_model_cli show --all --dir`` (same run), with the ratio; also ``python -c pass`` and the checker
   in-process, to show where the time goes.
2. A folder of 100 artifacts (TF SavedModels and TorchServe archives, built in a temp dir): total and per artifact.
3. ``gdc-sandbox check`` on a folder that is not an artifact (20,000 files, like ``check /tmp``): the checker looks
   at a bounded part of it, against ``check`` of one SavedModel.

Usage: .venv/bin/python bench/check_bench.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sandbox.artifacts import check_artifact  # noqa: E402
from tests.checker.conftest import write_mar  # noqa: E402

BIN = Path(sys.executable).parent


def build(tmp: Path) -> tuple[Path, bytes]:
    env = {**os.environ, "KERAS_HOME": str(tmp / "keras"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(
        [sys.executable, str(ROOT / "tests/checker/build_tf_models.py"), str(tmp / "tf")],
        env=env,
        check=True,
        capture_output=True,
    )
    code = (
        "import io, sys, torch; b = io.BytesIO(); torch.jit.save(torch.jit.script(torch.nn.Linear(2, 1)), b);"
        "sys.stdout.buffer.write(b.getvalue())"
    )
    script = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True).stdout
    return tmp / "tf", script


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="check-bench-") as tmp_s:
        tmp = Path(tmp_s)
        tf_dir, script = build(tmp)
        model = tf_dir / "good"
        cli = [str(BIN / "saved_model_cli"), "show", "--all", "--dir", str(model)]
        ours = [str(BIN / "gdc-sandbox"), "check", str(model)]
        cold = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import time; t=time.perf_counter(); from pathlib import Path;"
                f"from sandbox.artifacts import check_artifact; check_artifact(Path({str(model)!r}));"
                "print(time.perf_counter()-t)",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        t_cli = timed(lambda: subprocess.run(cli, check=True, capture_output=True), 3)
        t_pass = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 10)
        t_ours = timed(lambda: subprocess.run(ours, check=True, capture_output=True, cwd=tmp), 10)
        t_check = timed(lambda: check_artifact(model), 20)
        print(f"python -c pass (baseline)            {t_pass * 1000:9.1f} ms (median of 10)")
        print(f"saved_model_cli show --all           {t_cli * 1000:9.1f} ms (process, median of 3)")
        ratio = t_cli / t_ours
        print(f"gdc-sandbox check DIR, new process   {t_ours * 1000:9.1f} ms (ratio {ratio:6.1f}x; goal >= 40x)")
        print(f"check_artifact, first call (cold)    {float(cold.stdout) * 1000:9.1f} ms")
        print(f"check_artifact, warm (median of 20)  {t_check * 1000:9.1f} ms (ratio {t_cli / t_check:6.1f}x)")

        fleet = tmp / "fleet"
        names = [n for n in sorted(os.listdir(tf_dir)) if (tf_dir / n).is_dir()]
        for i in range(100):
            target = fleet / f"a{i:03d}"
            if i % 2:
                write_mar(target / ("model.mar" if i % 10 else "mnist.mar"), files={"model.pt": script})
            else:
                shutil.copytree(tf_dir / names[(i // 2) % len(names)], target)
        t = time.perf_counter()
        reports = [check_artifact(p) for p in sorted(fleet.iterdir())]
        total = time.perf_counter() - t
        bad = sum(not r.ok for r in reports)
        print(
            f"100 artifacts (50 TF, 50 .mar)       {total * 1000:9.1f} ms total, {total * 10:.1f} ms each; "
            f"{bad} with errors"
        )

        tree = tmp / "not-an-artifact"
        for i in range(20_000):
            sub = tree / f"run{i // 100:03d}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"events{i % 100:02d}.txt").write_bytes(b"loss 0.1\n")
        t_tree = timed(lambda: subprocess.run([*ours[:2], str(tree)], capture_output=True, cwd=tmp), 5)
        print(f"gdc-sandbox check TREE (20,000 files) {t_tree * 1000:9.1f} ms (layout.not-an-artifact; one model: "
              f"{t_ours * 1000:.1f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
