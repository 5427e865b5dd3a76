"""``modelContainerSpec.command``/``args`` of a DeployedModel: which flags the sandbox honours, which it reports.

The prebuilt images run ``tensorflow_model_server`` or ``torchserve``. Each flag is either honoured
(passed to the sandbox's model server), equal to what the sandbox already does (silent), accepted with
a warning naming it (no effect here), or unknown to the real server, which then refuses to start: the
sandbox fails the rollout the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.images import Image

SERVERS = {"tf": "tensorflow_model_server", "torch": "torchserve"}

# tensorflow_model_server flags passed on to the sandbox's server as given.
TF_HONOURED = ("file_system_poll_wait_seconds", "model_config_file_poll_wait_seconds")
# Flags the sandbox sets itself, with the value the prebuilt image uses (a different value is reported).
TF_MANAGED = {
    "port": "8500",
    "rest_api_port": "8080",
    "model_name": "default",
    "model_config_file": "/models/models.config",
    "model_base_path": None,
    "rest_api_host": None,
    "grpc_host": None,
}
TS_MANAGED = {
    "--start": None,
    "--foreground": None,
    "--ncs": None,
    "--no-config-snapshots": None,
    "--disable-token-auth": None,
    "--enable-model-api": None,
    "--model-store": "the sandbox's model store holding model.mar",
    "--models": "model=model.mar",
    "--ts-config": "the image's config.properties (service_envelope=json)",
    "--log-config": "the sandbox's log configuration",
    "--workflow-store": "no workflows",
    "--plugins-path": "no plugins",
}
IMAGE_VALUES = (
    "model=model.mar",
    "model.mar",
    "/home/model-server/config.properties",
    "/home/model-server/model-store",
)
TS_TAKES_VALUE = ("--model-store", "--models", "--ts-config", "--log-config", "--workflow-store", "--plugins-path")


@dataclass
class ContainerPlan:
    """What the sandbox does with a container's command and args."""

    server_args: list[str] = field(default_factory=list)
    """Flags passed on to the sandbox's model server."""
    notes: list[str] = field(default_factory=list)
    """Warnings, each naming the flag."""
    refusal: str = ""
    """Set when the real server would refuse to start: its own words."""


def plan(image: Image, command: list[str], args: list[str]) -> ContainerPlan:
    result = ContainerPlan()
    server = SERVERS[image.framework]
    if command and command[0].rsplit("/", 1)[-1] != server:
        result.notes.append(
            f"spec.modelSpec.modelContainerSpec.command {command[0]!r} is not the image's server; "
            f"the sandbox runs {server} as {image.name} does"
        )
    argv = [*command[1:], *args]
    if image.framework == "tf":
        _plan_tf(argv, result)
    else:
        _plan_torchserve(argv, result)
    return result


def _plan_tf(argv: list[str], result: ContainerPlan) -> None:
    from sandbox.runtimes.tfserving.flags import IGNORED_FLAGS

    i = 0
    while i < len(argv):
        arg = argv[i]
        name, has_value, value = arg.lstrip("-").partition("=")
        if not arg.startswith("-"):
            result.refusal = f"unknown argument: {arg}"
            return
        known = name in TF_HONOURED or name in TF_MANAGED or name in IGNORED_FLAGS
        if not has_value and known and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            value, i = argv[i + 1], i + 1
        i += 1
        if name in TF_HONOURED:
            result.server_args.append(f"--{name}={value}")
        elif name in TF_MANAGED:
            if TF_MANAGED[name] != value:
                result.notes.append(
                    f"args: --{name}={value} is set by the sandbox (each replica gets its own loopback ports and "
                    f"serves the artifact as model 'default'); call the endpoint, not the container port"
                )
        elif name in IGNORED_FLAGS:
            result.notes.append(f"args: --{name} is accepted but has no effect in the sandbox's TF server")
        else:
            result.refusal = f"unknown argument: --{name}"  # what tensorflow_model_server prints before exiting
            return


def _plan_torchserve(argv: list[str], result: ContainerPlan) -> None:
    i = 0
    while i < len(argv):
        arg, _, value = argv[i].partition("=")
        if arg in TS_TAKES_VALUE and not value and i + 1 < len(argv):
            value, i = argv[i + 1], i + 1
        i += 1
        if arg not in TS_MANAGED:
            result.refusal = f"torchserve: error: unrecognized arguments: {arg}"
            return
        usual = TS_MANAGED[arg]
        if usual is not None and value not in IMAGE_VALUES:
            result.notes.append(f"args: {arg} {value} is not used; the sandbox uses {usual}")


def container_advisories(image: Image, command: list[str], args: list[str]) -> list[str]:
    """Warnings for ``apply``: every flag the sandbox does not honour as given."""
    found = plan(image, command, args)
    notes = list(found.notes)
    if found.refusal:
        notes.append(f"args: the image's server would refuse to start ({found.refusal}); the rollout will fail")
    return notes
