"""Reading a model server's log after a failure: late lines are waited for, exception lines are found."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from sandbox.runtimes.serverlog import error_lines, failure_report, last_error_line
from sandbox.runtimes.torchserve import worker_python_script

# Lines as TorchServe writes them (worker output goes through a reader thread, prefixed MODEL_LOG).
WORKER_DIED = "2026-11-24T21:14:02,401 [INFO ] epollEventLoopGroup-4-1 WorkerThread - 9000 Worker disconnected."
LOAD_FAILED = (
    "2026-11-24T21:14:02,405 [INFO ] W-9000-model_1.0-stdout MODEL_LOG - Failed to load model model, "
    "exception PytorchStreamReader failed locating file constants.pkl: file not found."
)
RUNTIME_ERROR = (
    "2026-11-24T21:14:02,406 [INFO ] W-9000-model_1.0-stdout MODEL_LOG - RuntimeError: PytorchStreamReader "
    "failed locating file constants.pkl: file not found."
)
ACCESS = '2026-11-24T21:14:02,407 [INFO ] ACCESS_LOG - /127.0.0.1:52020 "POST /models HTTP/1.1" 500 1069'


def _append_later(path: Path, lines: list[str], delay: float) -> threading.Thread:
    def write() -> None:
        time.sleep(delay)
        with open(path, "a") as handle:
            for line in lines:
                handle.write(line + "\n")
                handle.flush()
                time.sleep(0.02)

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_failure_report_waits_for_the_worker_exception_written_after_the_refusal(tmp_path: Path) -> None:
    log = tmp_path / "pod.log"
    log.write_text(WORKER_DIED + "\n" + ACCESS + "\n")
    writer = _append_later(log, [LOAD_FAILED, RUNTIME_ERROR], delay=0.15)
    try:
        report = failure_report(log)
    finally:
        writer.join()
    assert "Failed to load model model, exception PytorchStreamReader failed locating file constants.pkl" in report
    head, _, tail = report.partition("model server log (last lines):")
    assert head.startswith("model server errors:")
    assert "RuntimeError: PytorchStreamReader" in head
    assert tail.strip().endswith(RUNTIME_ERROR)


def test_exception_lines_survive_a_long_log_after_them(tmp_path: Path) -> None:
    noise = [f"2026-11-24T21:14:03,{i:03d} [DEBUG] W-9000 WorkerThread - State change {i}" for i in range(200)]
    log = tmp_path / "pod.log"
    log.write_text("\n".join([LOAD_FAILED, RUNTIME_ERROR, RUNTIME_ERROR, *noise, ACCESS]) + "\n")
    report = failure_report(log, lines=10)
    assert "Failed to load model model" in report
    assert report.count("RuntimeError: PytorchStreamReader") == 1  # repeated lines are shown once
    assert error_lines(log) == [LOAD_FAILED.split(" - ", 1)[1], RUNTIME_ERROR.split(" - ", 1)[1]]


def test_last_error_line_skips_access_log_and_plain_lines(tmp_path: Path) -> None:
    log = tmp_path / "pod.log"
    log.write_text(RUNTIME_ERROR + "\n" + ACCESS + "\nplain line\n")
    assert last_error_line(log).startswith("RuntimeError: PytorchStreamReader failed locating file constants.pkl")
    (tmp_path / "clean.log").write_text("all good\n")
    assert last_error_line(tmp_path / "clean.log") == ""
    assert last_error_line(tmp_path / "missing.log") == ""


def test_failure_report_reads_the_worker_copy_when_torchserve_lost_the_lines(tmp_path: Path) -> None:
    log, worker = tmp_path / "pod.log", tmp_path / "worker-stderr.log"
    log.write_text(WORKER_DIED + "\n" + ACCESS + "\n")
    worker.write_text("Traceback (most recent call last):\nValueError: Expected only one class as model definition.\n")
    report = failure_report(log, also=[worker])
    head, _, tail = report.partition("model server log (last lines):")
    assert "ValueError: Expected only one class as model definition." in head
    assert "ValueError" not in tail  # the tail is TorchServe's own log, as it is


def _worker_script(folder: Path) -> tuple[Path, Path]:
    """A pod's worker launcher around this Python, and the folder it keeps its copies in."""
    script, logs = folder / "worker-python", folder / "pod logs"
    logs.mkdir()
    script.write_text(worker_python_script(sys.executable, logs))
    script.chmod(0o755)
    return script, logs


def _assert_copies(logs: Path, expected: dict[str, str]) -> None:
    """Each stream's copy ends up holding ``expected[stream]`` (the copy is written a moment after the worker)."""
    for stream, text in expected.items():
        copy = logs / f"worker-{stream}.log"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and copy.read_text() != text:
            time.sleep(0.05)
        assert copy.read_text() == text  # every line, whole, in order


def test_worker_python_script_keeps_pid_exit_code_and_a_copy_of_the_output(tmp_path: Path) -> None:
    script, logs = _worker_script(tmp_path)
    code = (
        "import os, sys\nfor i in range(200):\n    print(os.getpid(), i)\n    print('boom', i, file=sys.stderr)\n"
        "sys.exit(3)"
    )
    proc = subprocess.Popen([str(script), "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert out.splitlines()[0] == f"{proc.pid} 0"  # exec: TorchServe's handle on the worker is the worker itself
    assert err.splitlines()[-1] == "boom 199"
    _assert_copies(logs, {"stdout": out, "stderr": err})


def test_worker_output_is_kept_whole_after_torchserve_stops_reading_it(tmp_path: Path) -> None:
    """TorchServe closes its readers of a worker's output as soon as the worker dies, possibly before the copy has
    passed on the worker's last lines (its exception): the copy in the pod's logs must still get every line."""
    script, logs = _worker_script(tmp_path)
    code = (
        "import sys\nprint('loading', flush=True)\nprint('loading', file=sys.stderr, flush=True)\nsys.stdin.readline()\n"
        "print('Failed to load model model', flush=True)\n"
        "print('RuntimeError: 500 - Unknown exception', file=sys.stderr, flush=True)\nsys.exit(1)"
    )
    proc = subprocess.Popen(
        [str(script), "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    assert proc.stdout.readline() == "loading\n" and proc.stderr.readline() == "loading\n"
    proc.stdout.close()  # TorchServe's reader threads stop
    proc.stderr.close()
    proc.stdin.write("go\n")  # the worker writes its exception and dies
    proc.stdin.close()
    assert proc.wait(timeout=30) == 1
    _assert_copies(
        logs,
        {
            "stdout": "loading\nFailed to load model model\n",
            "stderr": "loading\nRuntimeError: 500 - Unknown exception\n",
        },
    )
