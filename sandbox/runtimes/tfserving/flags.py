"""Command-line flags of ``tensorflow_model_server`` that this server understands.

Both ``--flag=value`` and ``--flag value`` work (argparse). Flags of the real binary that change
nothing here are accepted and reported once as ignored, so a real invocation still starts.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields

# Real flags with no effect in this emulation (accepted so the same command line works).
IGNORED_FLAGS = (
    "enable_batching", "batching_parameters_file", "allow_version_labels_for_unavailable_models",
    "tensorflow_session_parallelism", "tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism",
    "enable_model_warmup", "num_load_threads", "num_unload_threads", "max_num_load_retries",
    "load_retry_interval_micros", "monitoring_config_file", "ssl_config_file", "platform_config_file",
    "per_process_gpu_memory_fraction", "saved_model_tags", "grpc_channel_arguments",
    "grpc_max_threads", "enable_signature_method_name_check", "xla_cpu_compilation_enabled",
    "flush_filesystem_caches", "remove_unused_fields_from_bundle_metagraph", "prefer_tflite_model",
    "use_tflite_model", "grpc_socket_path", "rest_api_enable_cors_support", "model_warmup_options",
    "enable_profiler", "thread_pool_factory_config_file", "mixed_precision", "skip_initialize_tpu",
    "rest_api_num_threads", "rest_api_timeout_in_ms",
)


@dataclass
class Flags:
    """Parsed server options (names match the real binary's flags; each field is a ``--flag``)."""

    port: int = field(default=8500, metadata={"help": "gRPC port (0 disables gRPC)"})
    rest_api_port: int = field(default=0, metadata={"help": "REST port (0 disables REST)"})
    rest_api_host: str = "127.0.0.1"
    grpc_host: str = field(default="127.0.0.1", metadata={"help": "sandbox-only: gRPC bind address"})
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: float = 1.0
    file_system_poll_wait_seconds: float = 1.0
    ignored: tuple[str, ...] = field(default=(), metadata={"flag": False})
    """Flags given on the command line that have no effect here."""


_OPTIONS = [f for f in fields(Flags) if f.metadata.get("flag", True)]


def parse_flags(argv: list[str]) -> Flags:
    """Parse ``argv`` (without the program name) into :class:`Flags`; exits with usage on error."""
    p = argparse.ArgumentParser(prog="tensorflow_model_server (sandbox)", allow_abbrev=False)
    for f in _OPTIONS:
        p.add_argument(f"--{f.name}", type=type(f.default), default=f.default, help=f.metadata.get("help"))
    for name in IGNORED_FLAGS:
        p.add_argument(f"--{name}", default=None, nargs="?", const="true")
    ns = p.parse_args(argv)
    if not ns.model_base_path and not ns.model_config_file:
        p.error("Both server_options.model_base_path and server_options.model_config_file are empty!")
    if ns.model_base_path and ns.model_config_file:
        p.error("--model_base_path and --model_config_file are mutually exclusive")
    ignored = tuple(n for n in IGNORED_FLAGS if getattr(ns, n) is not None)
    return Flags(ignored=ignored, **{f.name: getattr(ns, f.name) for f in _OPTIONS})
