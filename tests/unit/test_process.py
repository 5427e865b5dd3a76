import sys
import time
from pathlib import Path

import psutil

from sandbox.process import ManagedProcess, ProcessRecord, stop_group, tail


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); print('started', flush=True); time.sleep(60)"
    proc = ManagedProcess.start(
        "t", [sys.executable, "-c", script], tmp_path / "t.log", record_path=tmp_path / "t.json"
    )
    deadline = time.monotonic() + 10
    while "started" not in tail(tmp_path / "t.log") and time.monotonic() < deadline:
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "the grandchild should be running"
    proc.stop(timeout=5)
    assert not proc.is_alive()
    time.sleep(0.2)
    assert all(not c.is_running() or c.status() == psutil.STATUS_ZOMBIE for c in children)


def test_record_survives_a_round_trip_and_rejects_pid_reuse(tmp_path: Path) -> None:
    proc = ManagedProcess.start(
        "t", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "t.log", record_path=tmp_path / "t.json"
    )
    try:
        record = ProcessRecord.load(tmp_path / "t.json")
        assert record is not None and record.is_alive()
        record.create_time -= 100  # a different process that happens to have this PID
        assert not record.is_alive()
    finally:
        proc.stop()
    assert ProcessRecord.load(tmp_path / "missing.json") is None


SLOW_TO_STOP = """
import signal, sys, time
def leave(signum, frame):
    time.sleep(0.5)  # a clean-up that takes longer than its stopper's timeout
    sys.exit(3)
signal.signal(signal.SIGTERM, leave)
print("started", flush=True)
time.sleep(60)
"""


def test_a_process_recorded_with_a_grace_gets_at_least_that_long_to_exit(tmp_path: Path) -> None:
    codes = {}
    for grace in (0.0, 30.0):
        log = tmp_path / f"{grace}.log"
        proc = ManagedProcess.start("t", [sys.executable, "-c", SLOW_TO_STOP], log, grace=grace)
        deadline = time.monotonic() + 30
        while "started" not in tail(log) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop_group(proc.record, timeout=0.1)
        codes[grace] = proc.exit_code()
    assert codes == {0.0: -9, 30.0: 3}  # killed after the stopper's 0.1 s; let finish within its own grace
