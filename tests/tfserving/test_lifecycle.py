"""Version folders appearing while serving, config-file reloads and HandleReloadConfigRequest."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

from .conftest import Server, config_text, start_server

pytestmark = pytest.mark.tfserving


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def states(server: Server, model: str) -> dict[str, str]:
    status, body = server.request("GET", f"/v1/models/{model}")
    if status != 200:
        return {}
    return {s["version"]: s["state"] for s in body["model_version_status"]}


def test_versions_appear_and_latest_wins(zoo: dict[str, Path], tmp_path: Path) -> None:
    base = tmp_path / "m"
    base.mkdir()
    # "--flag value" form, and an empty base path to start with (the upload is not there yet)
    server = start_server(["--model_name", "m", "--model_base_path", str(base), "--file_system_poll_wait_seconds",
                           "0.2"], tmp_path / "log")
    try:
        status, body = server.request("GET", "/v1/models/m")
        assert status == 404
        assert f"No versions of servable m found under base path {base}" in body["error"]
        status, body = server.request("POST", "/v1/models/m:predict", {"instances": [[1, 1]]})
        assert (status, body) == (404, {"error": "Servable not found for request: Latest(m)"})
        shutil.copytree(zoo["versions"] / "1", base / "1")
        wait_for(lambda: states(server, "m") == {"1": "AVAILABLE"})
        shutil.copytree(zoo["versions"] / "2", base / "2")
        wait_for(lambda: states(server, "m") == {"2": "AVAILABLE", "1": "END"})
        got = server.request("POST", "/v1/models/m:predict", {"instances": [[1, 1]]})
        assert got == (200, {"predictions": [[30.5]]})
        log = server.log_text()
        assert "Successfully loaded servable version {name: m version: 2}" in log
        assert "Unloading servable version {name: m version: 1}" in log
    finally:
        server.stop()


def test_config_file_reload_and_grpc_reload(zoo: dict[str, Path], tmp_path: Path) -> None:
    cfg = tmp_path / "models.config"
    cfg.write_text(config_text({"dense": zoo["dense"]}))
    server = start_server([f"--model_config_file={cfg}", "--model_config_file_poll_wait_seconds=0.2",
                           "--file_system_poll_wait_seconds=0.2"], tmp_path / "log", ready_model="dense")
    try:
        assert server.request("GET", "/v1/models/multi")[0] == 404
        cfg.write_text(config_text({"dense": zoo["dense"], "multi": zoo["multi"]}))
        wait_for(lambda: states(server, "multi") == {"1": "AVAILABLE"})
        with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as ch:
            stub = model_service_pb2_grpc.ModelServiceStub(ch)
            req = model_management_pb2.ReloadConfigRequest()
            c = req.config.model_config_list.config.add()
            c.name, c.base_path, c.model_platform = "typed", str(zoo["typed"]), "tensorflow"
            resp = stub.HandleReloadConfigRequest(req, timeout=60)
            assert resp.status.error_code == 0
        assert states(server, "typed") == {"1": "AVAILABLE"}
        assert states(server, "dense") == {"1": "END"}  # dropped from the pushed config: unloaded
        assert server.request("POST", "/v1/models/dense:predict", {"instances": [[1, 1]]})[0] == 404
    finally:
        server.stop()


def test_specific_version_policy(zoo: dict[str, Path], tmp_path: Path) -> None:
    cfg = tmp_path / "models.config"
    cfg.write_text(
        f"model_config_list {{ config {{ name: 'v' base_path: '{zoo['versions']}' model_platform: 'tensorflow'\n"
        "  model_version_policy { specific { versions: 1 } } } }\n"
    )
    server = start_server([f"--model_config_file={cfg}"], tmp_path / "log", ready_model="v")
    try:
        assert states(server, "v") == {"1": "AVAILABLE"}
        got = server.request("POST", "/v1/models/v:predict", {"instances": [[1, 1]]})
        assert got == (200, {"predictions": [[3.5]]})
    finally:
        server.stop()

