"""modelContainerSpec.command/args: honoured, silent when equal to the image's, reported, or refused."""

from sandbox.control.container_args import container_advisories, plan
from sandbox.images import resolve

TF = resolve("tf2-cpu.2-18")
TORCH = resolve("pytorch-cpu.2-4")
DOCUMENTED_TF_ARGS = [
    "--model_config_file=/models/models.config",
    "--rest_api_port=8080",
    "--port=8500",
    "--file_system_poll_wait_seconds=30",
    "--model_config_file_poll_wait_seconds=30",
]


def test_the_documented_tf_args_are_honoured_without_warnings() -> None:
    found = plan(TF, ["/bin/tensorflow_model_server"], DOCUMENTED_TF_ARGS)
    assert found.server_args == ["--file_system_poll_wait_seconds=30", "--model_config_file_poll_wait_seconds=30"]
    assert found.notes == [] and found.refusal == ""


def test_flags_the_sandbox_cannot_honour_are_named() -> None:
    notes = container_advisories(TF, [], ["--rest_api_port=9000", "--enable_batching", "--bogus_flag=1"])
    assert any("--rest_api_port=9000" in n for n in notes)
    assert any("--enable_batching is accepted but has no effect" in n for n in notes)
    assert plan(TF, [], ["--bogus_flag=1"]).refusal == "unknown argument: --bogus_flag"
    assert any("torchserve" in n for n in container_advisories(TF, ["torchserve"], []))
    assert plan(TORCH, ["torchserve"], ["--start", "--models", "model=model.mar"]).notes == []
    assert any("--ts-config /etc/x" in n for n in container_advisories(TORCH, [], ["--ts-config", "/etc/x"]))
    assert "unrecognized arguments: --nope" in plan(TORCH, [], ["--nope"]).refusal
