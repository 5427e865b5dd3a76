"""A small byte-count progress bar for terminals (plain lines when stderr is not a TTY)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


class ProgressBar:
    """Thread-safe: boto3 calls ``__call__`` from its transfer threads with byte increments."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = max(total, 1)
        self.label = label
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self._lock = threading.Lock()
        self._last_draw = 0.0

    def __call__(self, increment: int) -> None:
        with self._lock:
            self.done += increment
            now = time.monotonic()
            if self.tty and now - self._last_draw > 0.1:
                self._last_draw = now
                self._draw()

    def _draw(self, final: bool = False) -> None:
        if not self.enabled:
            return
        frac = min(self.done / self.total, 1.0)
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        line = f"{self.label} [{bar}] {frac * 100:5.1f}% {human_bytes(self.done)}/{human_bytes(self.total)}"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        elif final:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        with self._lock:
            self._draw(final=True)
