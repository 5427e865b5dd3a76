"""Wire flags, configuration, the manager and both transports together; own start and stop."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from . import config, errors, tflog
from .flags import Flags
from .manager import ModelManager

_SERVER = "tensorflow_serving/model_servers/server.cc"


class ModelServer:
    """The whole server: ``start()`` loads models and opens ports, ``stop()`` closes them."""

    def __init__(self, flags: Flags) -> None:
        self.flags = flags
        self.manager: ModelManager | None = None
        self._rest: Any = None
        self._grpc: Any = None
        self._config_seen: tuple[float, str] | None = None

    def _initial_configs(self) -> list[config.ModelConfig]:
        f = self.flags
        if f.model_config_file:
            with open(f.model_config_file, encoding="utf-8") as fh:
                text = fh.read()
            self._config_seen = (os.stat(f.model_config_file).st_mtime, text)
            return config.parse_config_text(text)
        tflog.info(f"{_SERVER}:77", "Building single TensorFlow model file config:  "
                   f"model_name: {f.model_name} model_base_path: {f.model_base_path}")
        return config.from_flags(f.model_name, f.model_base_path)

    def _reload_config(self) -> None:
        """Poll ``--model_config_file``; apply it when its content changes (server.cc PollFilesystemAndReloadConfig)."""
        path = self.flags.model_config_file
        try:
            mtime = os.stat(path).st_mtime
            if self._config_seen and mtime == self._config_seen[0]:
                return
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            tflog.error(f"{_SERVER}:365", f"Unable to reload config file {path}: {exc}")
            return
        if self._config_seen and text == self._config_seen[1]:
            self._config_seen = (mtime, text)
            return
        self._config_seen = (mtime, text)
        try:
            configs = config.parse_config_text(text)
        except errors.ServingError as exc:
            tflog.error(f"{_SERVER}:368", f"Failed to parse config file {path}: {exc.to_string()}")
            return
        assert self.manager is not None
        self.manager.set_configs(configs)

    def start(self) -> None:
        f = self.flags
        for name in f.ignored:
            tflog.warning(f"{_SERVER}:0", f"Flag --{name} is accepted but has no effect in the sandbox server")
        self.manager = ModelManager(self._initial_configs(), f.file_system_poll_wait_seconds)
        self.manager.poll_once()
        tflog.info("tensorflow_serving/model_servers/server_core.cc:487", "Finished adding/updating models")
        extra = None
        if f.model_config_file and f.model_config_file_poll_wait_seconds > 0:
            extra = self._reload_config
        self.manager.start(extra)
        if f.port:
            from .grpc_server import serve_grpc

            self._grpc = serve_grpc(self.manager, f.grpc_host, f.port, self)
            tflog.info(f"{_SERVER}:428", f"Running gRPC ModelServer at {f.grpc_host}:{f.port} ...")
        if f.rest_api_port:
            from .rest import serve_rest

            self._rest, _ = serve_rest(self.manager, f.rest_api_host, f.rest_api_port)
            tflog.info(f"{_SERVER}:449", f"Exporting HTTP/REST API at:{f.rest_api_host}:{f.rest_api_port} ...")
            tflog.info("evhttp_server.cc:245", "NET_LOG: Entering the event loop ...")

    def reload(self, configs: list[config.ModelConfig]) -> None:
        """Apply a config pushed over gRPC ``HandleReloadConfigRequest``."""
        assert self.manager is not None
        self.manager.set_configs(configs)
        self.manager.poll_once()

    def stop(self) -> None:
        if self.manager is not None:
            self.manager.stop()
        if self._rest is not None:
            threading.Thread(target=self._rest.shutdown, daemon=True).start()
        if self._grpc is not None:
            self._grpc.stop(grace=0.5)

    def wait(self) -> None:
        """Block until SIGTERM/SIGINT."""
        done = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
