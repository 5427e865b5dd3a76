"""Reading a model server's log the way a person would: wait for it to finish writing, then find the error.

TorchServe writes a worker's output from a separate reader thread, so the management API can answer
"Failed to start workers" before the worker's own exception ("Failed to load model model, exception
...") reaches the log. Reading the log too early loses the one line the user needs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

from sandbox.process import tail

_ERROR_LINE = re.compile(r"\b((?:Failed to load model|[A-Z]\w*(?:Error|Exception)\b).*)")


def _sizes(paths: Sequence[Path]) -> list[int]:
    sizes = []
    for path in paths:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            sizes.append(-1)
    return sizes


def wait_until_quiet(*paths: Path, quiet: float = 0.3, limit: float = 3.0) -> None:
    """Return once none of ``paths`` has grown for ``quiet`` seconds, or after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    size, since = _sizes(paths), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = _sizes(paths)
        if now != size:
            size, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


def error_lines(path: Path, scan: int = 400, keep: int = 12) -> list[str]:
    """The distinct exception lines among the last ``scan`` log lines, oldest first, at most ``keep``."""
    found: list[str] = []
    for line in tail(path, scan).splitlines():
        if "ACCESS_LOG" in line:
            continue
        match = _ERROR_LINE.search(line.split(" - ", 1)[-1])
        if match:
            text = match.group(1).strip()[:500]
            if text in found:
                found.remove(text)
            found.append(text)
    return found[-keep:]


def last_error_line(path: Path) -> str:
    """The last exception line of the log ('' if none); TorchServe hides it behind "Prediction failed"."""
    lines = error_lines(path, scan=80, keep=1)
    return lines[0] if lines else ""


def failure_report(path: Path, lines: int = 40, also: Sequence[Path] = ()) -> str:
    """What to show when a model server failed: the exception lines of its log (and of the ``also`` logs,
    e.g. a copy of a worker's output), then the log's last lines."""
    wait_until_quiet(path, *also)
    errors = [line for log in (*also, path) for line in error_lines(log)]
    report = ""
    if errors:
        unique = list(dict.fromkeys(errors))[-12:]
        report = "model server errors:\n" + "\n".join(f"  {line}" for line in unique) + "\n"
    return report + f"model server log (last lines):\n{tail(path, lines)}"
