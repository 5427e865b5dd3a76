"""Log lines in the glog format TF Serving prints: ``I1124 19:46:00.691476  1234 file.cc:42] msg``."""

from __future__ import annotations

import os
import sys
import threading
import time

_lock = threading.Lock()


def _write(level: str, where: str, msg: str) -> None:
    now = time.time()
    stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now)) + f".{int((now % 1) * 1e6):06d}"
    line = f"{level}{stamp} {threading.get_native_id():>7} {where}] {msg}\n"
    with _lock:
        sys.stderr.write(line)
        sys.stderr.flush()


def info(where: str, msg: str) -> None:
    _write("I", where, msg)


def warning(where: str, msg: str) -> None:
    _write("W", where, msg)


def error(where: str, msg: str) -> None:
    _write("E", where, msg)


def servable_id(name: str, version: int) -> str:
    """TF Serving's ``ServableId::DebugString()``."""
    return f"{{name: {name} version: {version}}}"


def quiet_tensorflow_python_logs() -> None:
    """Silence TF's Python-side deprecation chatter (the C++ log level stays with TF_CPP_MIN_LOG_LEVEL)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
