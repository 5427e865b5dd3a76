"""Probes: what one probe finds on a real process (answered, failed, or silent but busy), and the verdicts a run
of probes gives (out of traffic, back in, killed), without a sandbox."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sandbox.control.probes import (
    ANSWERED,
    BUSY,
    BUSY_PATIENCE,
    FAILED,
    NOT_LIVE,
    NOT_READY,
    READY,
    Probe,
    ProbeSettings,
    ProbeState,
    probe,
)
from sandbox.process import ProcessRecord, wait_until
from sandbox.runtimes.base import PodInfo

SERVER = textwrap.dedent(
    '''
    """A model server in miniature: one thread, so a POST that works until a file appears blocks the probes."""
    import http.server
    import os
    import sys

    started, stop = sys.argv[1], sys.argv[2]


    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code, body = (503, b'{"status": "Unhealthy"}') if self.path == "/unhealthy" else (200, b"{}")
            self._answer(code, body)

        def do_POST(self):
            open(started, "w").close()
            while not os.path.exists(stop):  # a long prediction: busy on the CPU
                sum(range(20000))
            self._answer(200, b'{"predictions": []}')

        def _answer(self, code, body):
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass


    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_port, flush=True)
    server.serve_forever()
    '''
)


class Server:
    def __init__(self, folder: Path) -> None:
        self.started, self.stop = folder / "started", folder / "stop"
        script = folder / "server.py"
        script.write_text(SERVER)
        self.popen = subprocess.Popen(
            [sys.executable, str(script), str(self.started), str(self.stop)], stdout=subprocess.PIPE
        )
        assert self.popen.stdout is not None
        self.port = int(self.popen.stdout.readline())

    def pod(self, health_path: str = "/health") -> PodInfo:
        pid = self.popen.pid
        record = ProcessRecord("pod", pid, psutil.Process(pid).create_time(), [], os.devnull)
        return PodInfo("pod", "tf", "img", f"http://127.0.0.1:{self.port}", health_path, "/predict", record, {})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path)
    try:
        yield srv
    finally:
        srv.popen.send_signal(signal.SIGCONT)
        srv.popen.kill()
        srv.popen.wait()


def test_a_pod_that_answers_passes(server: Server) -> None:
    assert probe(server.pod(), 5) == Probe(ANSWERED)


def test_a_silent_pod_that_works_on_a_request_is_busy_not_failed(server: Server) -> None:
    def long_request() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        conn.request("POST", "/predict", b"{}")
        assert conn.getresponse().status == 200

    request = threading.Thread(target=long_request)
    request.start()
    try:
        assert wait_until(lambda: server.started.exists() or None, timeout=30)
        found = probe(server.pod(), 0.5)
    finally:
        server.stop.touch()
        request.join(timeout=60)
    assert found.outcome == BUSY, found
    assert found.problem.startswith("did not answer /health within 0.5s while its processes used ")
    assert found.problem.endswith("% of a core")
    assert probe(server.pod(), 5) == Probe(ANSWERED)  # it answers once the request is done


def test_a_stopped_pod_fails_and_the_probe_says_how_to_resume_it(server: Server) -> None:
    pid = server.popen.pid
    server.popen.send_signal(signal.SIGSTOP)
    assert wait_until(lambda: psutil.Process(pid).status() == psutil.STATUS_STOPPED or None, timeout=10)
    found = probe(server.pod(), 0.3)
    assert found == Probe(FAILED, "did not answer /health within 0.3s", stopped_pid=pid)
    assert found.said() == (
        f"did not answer /health within 0.3s (its process {pid} is stopped, as by SIGSTOP: `kill -CONT {pid}` resumes it)"
    )
    server.popen.send_signal(signal.SIGCONT)
    assert probe(server.pod(), 5) == Probe(ANSWERED)


def test_an_error_status_and_a_refused_connection_fail(server: Server) -> None:
    unhealthy = Probe(FAILED, 'answered /unhealthy with HTTP 503: {"status": "Unhealthy"}')
    assert probe(server.pod("/unhealthy"), 5) == unhealthy
    pod = server.pod()
    server.popen.kill()
    server.popen.wait()
    refused = f"refused the connection to /health (nothing listens on http://127.0.0.1:{server.port})"
    assert probe(pod, 5) == Probe(FAILED, refused)


SETTINGS = ProbeSettings(period=1, timeout=1, readiness_failures=2, liveness_failures=4)
SILENT = Probe(FAILED, "did not answer /ping within 1s")


def test_readiness_takes_a_pod_out_after_its_threshold_and_its_first_answer_puts_it_back() -> None:
    state = ProbeState(SETTINGS)
    assert state.record(SILENT, 0) == []
    changes = state.record(SILENT, 0)
    assert [(c.kind, c.message) for c in changes] == [
        (NOT_READY, "readiness probe failed 2 times in a row: it did not answer /ping within 1s")
    ]
    assert state.record(SILENT, 0) == []  # said once
    assert [c.kind for c in state.record(Probe(ANSWERED), 0)] == [READY]
    assert state.record(Probe(ANSWERED), 0) == [] and state.failures == 0


def test_liveness_fails_after_its_threshold_of_failures_in_a_row() -> None:
    state = ProbeState(SETTINGS)
    kinds = [[c.kind for c in state.record(SILENT, 0)] for _ in range(3)]
    assert kinds == [[], [NOT_READY], []]
    last = state.record(SILENT, 0)
    assert [(c.kind, c.message) for c in last] == [
        (NOT_LIVE, "liveness probe failed 4 times in a row: it did not answer /ping within 1s")
    ]


def test_an_answer_starts_the_count_again() -> None:
    state = ProbeState(ProbeSettings(1, 1, readiness_failures=3, liveness_failures=3))
    for _ in range(10):
        assert state.record(SILENT, 0) == [] and state.record(SILENT, 0) == []
        assert state.record(Probe(ANSWERED), 0) == []
    assert state.counts == {ANSWERED: 10, FAILED: 20, BUSY: 0}


def test_a_busy_pod_counts_neither_way_and_is_logged_once_per_run() -> None:
    state = ProbeState(ProbeSettings(1, 1, readiness_failures=1, liveness_failures=2))
    busy = Probe(BUSY, "did not answer /ping within 1s while its processes used 80% of a core")
    first = state.record(busy, 0)
    assert [(c.kind, c.message) for c in first] == [(BUSY, busy.problem)]
    assert all(state.record(busy, 0) == [] for _ in range(50))  # never out of traffic, never killed
    assert state.ready and state.failures == 0
    assert [c.kind for c in state.record(SILENT, 0)] == [NOT_READY]  # a silence without work is a failure
    assert [c.kind for c in state.record(busy, 0)] == [BUSY]  # a new run of busy probes: logged again
    assert state.failures == 1  # and the busy one did not reset the count either
    assert [c.kind for c in state.record(SILENT, 0)] == [NOT_LIVE]


def test_a_single_failure_says_once_and_a_stopped_process_is_named() -> None:
    state = ProbeState(ProbeSettings(1, 1, readiness_failures=1, liveness_failures=2))
    stopped = Probe(FAILED, "did not answer /ping within 1s", stopped_pid=42)
    assert state.record(stopped, 0)[0].message == (
        "readiness probe failed once: it did not answer /ping within 1s "
        "(its process 42 is stopped, as by SIGSTOP: `kill -CONT 42` resumes it)"
    )
    assert state.record(stopped, 0)[0].message == (  # it is killed next: no advice to resume it
        "liveness probe failed 2 times in a row: it did not answer /ping within 1s (its process 42 was stopped, as by SIGSTOP)"
    )


def test_a_pod_silent_and_busy_for_longer_than_the_patience_is_taken_for_hung() -> None:
    state = ProbeState(ProbeSettings(10, 1, readiness_failures=1, liveness_failures=2))
    busy = Probe(BUSY, "did not answer /ping within 1s while its processes used 100% of a core")
    assert [c.kind for c in state.record(busy, now=1000)] == [BUSY]
    assert state.record(busy, now=1000 + BUSY_PATIENCE - 1) == []
    [out] = state.record(busy, now=1000 + BUSY_PATIENCE)
    assert (out.kind, out.message) == (NOT_READY, f"readiness probe failed once: it {busy.problem}, silent for over 300s")
    assert [c.kind for c in state.record(busy, now=1000 + BUSY_PATIENCE + 10)] == [NOT_LIVE]
