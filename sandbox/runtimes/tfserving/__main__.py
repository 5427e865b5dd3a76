"""``python -m sandbox.runtimes.tfserving --port=8500 --rest_api_port=8501 --model_name=m --model_base_path=/p``."""

from __future__ import annotations

import sys

from . import errors, tflog
from .flags import parse_flags


def main(argv: list[str] | None = None) -> int:
    flags = parse_flags(sys.argv[1:] if argv is None else argv)
    tflog.quiet_tensorflow_python_logs()
    from .server import ModelServer

    server = ModelServer(flags)
    try:
        server.start()
    except (OSError, errors.ServingError) as exc:
        msg = exc.to_string() if isinstance(exc, errors.ServingError) else str(exc)
        tflog.error("tensorflow_serving/model_servers/main.cc:0", f"Failed to start server. Error: {msg}")
        server.stop()
        return 1
    server.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
