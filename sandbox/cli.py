"""``gdc-sandbox``: a thin front door. Parse, call :class:`sandbox.engine.Sandbox`, print, return an exit code."""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.errors import SandboxError, UsageError

if TYPE_CHECKING:
    from sandbox.engine import Sandbox

# Start-up time matters (scripts poll `get`, hooks run `check`): a command imports what only it needs
# (yaml, jsonpath, boto3, the checker, kubectl's formats, the settings' role names) inside its function, and
# `main` builds only that command's parser; tests/unit/test_cli_imports.py keeps it so.


def _out(text: str = "") -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_up(sb: Sandbox, args: argparse.Namespace) -> int:
    from sandbox.settings import SERVING_IDENTITY

    state, started = sb.up()
    _out(("sandbox started" if started else "sandbox already running") + f" (home {sb.settings.home})")
    _out(
        f"  S3 endpoint:    {state.s3_url}   bucket s3://{sb.settings.bucket}"
        f"  (credentials: {sb.stack.credentials_path})"
    )
    _out(f"  control plane:  {state.gateway_url}")
    _out(f"  predict URLs:   {state.gateway_url}/endpoints/<project>/<endpoint>/v1/model:predict")
    _out(f"  project:        {sb.settings.project}   serving identity: {SERVING_IDENTITY}")
    restore = sb.restore_progress()
    if restore.get("total", 0) > restore.get("done", 0):
        _out(
            f"  restoring:      {restore['total']} DeployedModel(s) in the background, what served before the "
            f"restart ({restore['done']} done); `gdc-sandbox status` shows progress"
        )
    _out(
        "  prediction auth: on (bearer tokens: `gdc-sandbox iam --help`)"
        if sb.health().get("predictionAuth")
        else "  prediction auth: off (GDC_SANDBOX_PREDICTION_AUTH=true at `up` turns it on: `gdc-sandbox iam --help`)"
    )
    return 0


def cmd_down(sb: Sandbox, args: argparse.Namespace) -> int:
    stopped = sb.down()
    if not stopped:
        _out("nothing was running")
        return 0
    components = [name for name in stopped if not name.startswith("pod/")]
    pods = [name for name in stopped if name.startswith("pod/")]
    _out("stopped: " + ", ".join(components) + (f" and {len(pods)} model-server pod(s):" if pods else ""))
    for pod in pods:
        _out(f"  {pod}")
    return 0


def cmd_status(sb: Sandbox, args: argparse.Namespace) -> int:
    components = sb.stack.status()
    if not components:
        _out(f"sandbox is not running (home {sb.settings.home})")
        return 3
    rows = [("COMPONENT", "STATE", "URL", "PID", "RESTARTS", "LOG")]
    rows += [(c.name, c.state, c.url, str(c.pid), "-", c.log) for c in components]
    rows += [
        (
            f"pod/{p['name']}",
            p["state"] + (" (not ready)" if p.get("ready") is False else ""),
            p.get("url", "-"),
            str(p.get("pid", "-")),
            str(p.get("restartCount", 0)),
            p.get("log", ""),
        )
        for p in sb.stack.pods()
    ]
    rows += [(f"warm/{w.name}", w.state, w.url, str(w.pid), "-", w.log) for w in sb.stack.warm_processes()]
    _table(rows)
    if all(c.state == "running" for c in components):
        restore = sb.restore_progress()
        if restore.get("total") and restore["done"] < restore["total"]:
            _out(
                f"restoring DeployedModels after a restart: {restore['done']}/{restore['total']} done"
                + (f", failed: {', '.join(restore['failed'])}" if restore.get("failed") else "")
            )
    containers = sb.stack.backend.containers()
    if containers is not None:
        from dataclasses import astuple

        _out()
        _table([("CONTAINER ID", "NAME", "IMAGE", "STATE")] + [astuple(c) for c in containers])
    return 0 if all(c.state == "running" for c in components) else 1


def cmd_upload(sb: Sandbox, args: argparse.Namespace) -> int:
    warnings = sb.overwrite_warnings(args.uri) if args.overwrite and sb.stack.running() else []
    result = sb.upload(Path(args.source), args.uri, overwrite=args.overwrite, progress=not args.quiet)
    _out(f"uploaded {len(result.keys)} file(s), {result.total_bytes} bytes to {result.uri} (checksums verified)")
    for warning in warnings:
        _err(f"warning: {warning}")
    return 0


def cmd_ls(sb: Sandbox, args: argparse.Namespace) -> int:
    objects = sb.list_objects(args.uri)
    for obj in objects:
        _out(f"{obj['size']:>12}  {obj['key']}")
    if not objects:
        _err(f"nothing under {args.uri}")
    return 0


def cmd_deploy(sb: Sandbox, args: argparse.Namespace) -> int:
    endpoint = args.endpoint or _default_endpoint(args.uri)
    deployment = sb.deploy(
        args.uri,
        args.image,
        endpoint,
        namespace=args.project,
        force=args.force,
        replicas=args.replicas,
        traffic=args.traffic,
        wait=not args.no_wait,
        timeout=args.timeout,
        on_progress=lambda m: _err(f"  ... {m}"),
    )
    for warning in deployment.warnings:
        _err(f"warning: {warning}")
    for diag in deployment.diagnostics:
        _err(_render_diagnostic(diag))
    if args.no_wait:
        _out(
            f"DeployedModel {deployment.deployed_model} applied; watch it with "
            f"`gdc-sandbox get deployedmodel {deployment.deployed_model} -o jsonpath={{.status.primaryCondition}}`"
        )
        for old in deployment.replaced:
            _out(f"once it is ready it replaces DeployedModel {old['deployedModel']} on endpoint {deployment.endpoint}")
        return 0
    _out(
        f"deployed {args.uri} as DeployedModel {deployment.deployed_model}"
        f" (deployedModelId {deployment.deployed_model_id})"
    )
    for old in deployment.replaced:
        _out(
            f"replaced DeployedModel {old['deployedModel']} on endpoint {deployment.endpoint} (it had "
            f"{old['trafficPercentage']}% of the traffic); `deploy` deletes the DeployedModels it put there before"
        )
    if len(deployment.traffic) > 1:
        split = ", ".join(f"{d['deployedModel']} {d['trafficPercentage']}%" for d in deployment.traffic)
        _out(f"traffic of endpoint {deployment.endpoint}: {split}")
    _out(f"endpoint {deployment.endpoint} is ready")
    _out(f"predict URL: {deployment.predict_url}")
    return 0


def _predict_endpoint(args: argparse.Namespace) -> str:
    """The endpoint named positionally or with ``--endpoint`` (``deploy``'s spelling), not two different ones."""
    named = {name for name in (args.endpoint, args.endpoint_option) if name}
    if len(named) != 1:
        raise UsageError(
            "name one endpoint" + (f", not {' and '.join(sorted(named))}" if named else ""),
            hint="gdc-sandbox predict ENDPOINT --instances '[[1.0, 2.0]]' (`gdc-sandbox get endpoints` lists them)",
        )
    return named.pop()


def _request_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read --file {path}: {exc.strerror or exc}",
            hint='give a JSON file holding the request body, e.g. {"instances": [[1.0, 2.0]]}',
        ) from None


def cmd_predict(sb: Sandbox, args: argparse.Namespace) -> int:
    import json

    endpoint = _predict_endpoint(args)
    if args.file:
        body = _request_file(args.file)
    elif args.instances is not None:
        try:
            instances = json.loads(args.instances)
        except ValueError as exc:
            raise UsageError(f"--instances is not valid JSON: {exc}", hint="e.g. --instances '[[1.0, 2.0]]'") from None
        body = json.dumps({"instances": instances}).encode()
    else:
        raise UsageError("give --instances JSON or --file request.json")
    answer = sb.prediction(endpoint, body=body, namespace=args.project, raw=args.raw, token=args.token)
    for warning in answer.warnings:
        _err(f"warning: {warning}")
    if answer.status < 400 or args.format == "json":
        _out(json.dumps(answer.body))
        return 0 if answer.status < 400 else 1
    from sandbox.client import RemoteError

    error = RemoteError(answer.status, answer.body)
    if not error.hint:  # :rawPredict passes the model server's own answer through
        error.code = "predict.model-server-error"
        error.hint = "this is the model server's own answer to the body --raw passed through unchanged"
    raise error


def cmd_check(sb: Sandbox, args: argparse.Namespace) -> int:
    report = sb.check(args.target, args.image)
    if args.format == "json":
        import json

        _out(json.dumps(report.to_dict()))
    else:
        _out(report.render_text())
    return 0 if report.ok else 1


def cmd_repro(sb: Sandbox, args: argparse.Namespace) -> int:
    from sandbox.repro.commands import repro

    request = _repro_request(sb, args)
    request.out = Path(args.out) if args.out else Path(f"repro-{_slug(args.source)}-{time.strftime('%Y%m%d-%H%M%S')}")
    result = repro(request)
    from sandbox.repro.report import verdict_line

    _out(verdict_line(result))
    _out(f"report: {result.out / 'report.md'}  (scenario: {result.out / 'scenario'}/)")
    return result.exit_code


def cmd_scenario(sb: Sandbox, args: argparse.Namespace) -> int:
    from sandbox.repro.commands import new_scenario
    from sandbox.repro.report import verdict_line

    result, written = new_scenario(_repro_request(sb, args), Path(args.out) if args.out else None)
    _out(verdict_line(result))
    for path in written:
        _out(f"wrote {path}: run it with `pytest {path}`")
    return 0


def _repro_request(sb: Sandbox, args: argparse.Namespace) -> Any:
    from sandbox.repro.run import ReproRequest

    instances = None
    if args.instances is not None:
        instances = _json_arg(args.instances, "--instances")
    elif args.instances_file:
        try:
            instances = _json_arg(Path(args.instances_file).read_text(), "--instances-file")
        except OSError as exc:
            raise UsageError(f"cannot read --instances-file: {exc}", code="repro.bad-instances") from None
    if isinstance(instances, dict) and "instances" in instances:
        instances = instances["instances"]
    if instances is not None and not isinstance(instances, list):
        raise UsageError("instances must be a JSON list", code="repro.bad-instances", hint="e.g. '[[1.0, 2.0]]'")
    return ReproRequest(
        args.source,
        args.image,
        Path("."),
        instances=instances,
        use_running=args.use_running,
        settings=sb.settings,
        progress=lambda m: _err(f"  ... {m}"),
    )


def _json_arg(text: str, flag: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"{flag} is not valid JSON: {exc}",
            code="repro.bad-instances",
            hint="e.g. --instances '[[1.0, 2.0]]' or a file holding {\"instances\": [...]}",
        ) from None


def _slug(source: str) -> str:
    from sandbox.repro.source import slug

    return slug(source)


def cmd_apply(sb: Sandbox, args: argparse.Namespace) -> int:
    from sandbox.kubectl import resource_name

    documents = [doc for name in args.filename for doc in _load_manifests(Path(name))]
    for item in sb.apply(documents, args.namespace):
        for warning in item.get("warnings", []):
            _err(f"Warning: {item['kind']} {item['name']}: {warning}")
        _out(f"{resource_name({'kind': item['kind'], 'metadata': item})} {item['action']}")
    if args.wait:
        for doc in documents:
            if doc.get("kind") == "DeployedModel":
                ns = doc["metadata"].get("namespace") or args.namespace or sb.settings.project
                ready = sb.wait_ready("DeployedModel", doc["metadata"]["name"], ns, args.timeout)
                _out(f"{resource_name(doc)} ready")
                for diag in ready.get("status", {}).get("diagnostics") or []:
                    _err(_render_diagnostic(diag))
    return 0


def _targets(sb: Sandbox, args: argparse.Namespace, verb: str) -> list[tuple[str, str | None, str | None]]:
    """(kind, name, namespace) from KIND [NAME], TYPE/NAME, or -f FILE (kubectl's three ways) for command ``verb``."""
    from sandbox.kinds import KINDS, canonical_kind
    from sandbox.kubectl import split_type_name

    if args.filename:
        if args.kind:
            raise UsageError("give either -f FILE or a resource type, not both", code=f"usage.{verb}")
        documents = [d for name in args.filename for d in _load_manifests(Path(name))]
        named = [d for d in documents if isinstance(d, dict) and isinstance(d.get("metadata"), dict)]
        ns = args.namespace
        return [
            (canonical_kind(str(d.get("kind"))), d["metadata"]["name"], d["metadata"].get("namespace") or ns)
            for d in named
        ]
    if not args.kind:
        raise UsageError(
            "you must specify the type of resource",
            code=f"usage.{verb}",
            hint=f"e.g. `gdc-sandbox {verb} deployedmodel{'s' if verb == 'get' else '/NAME'}`",
        )
    if args.kind == "all" and not args.name:
        return [(kind, None, args.namespace) for kind in KINDS]
    kind, name = split_type_name(args.kind, args.name)
    return [(kind, name, args.namespace)]


def cmd_get(sb: Sandbox, args: argparse.Namespace) -> int:
    from sandbox.kubectl import format_items

    targets = _targets(sb, args, "get")
    items = [item for kind, name, ns in targets for item in sb.get(kind, name, ns)]
    single = len(targets) == 1 and targets[0][1] is not None
    text = format_items(items, args.output or "", single)
    if text or (args.output or "").startswith("jsonpath="):
        _out(text)
    elif not items:
        _err(f"No resources found in {args.namespace or sb.settings.project} namespace.")
    return 0


def cmd_wait(sb: Sandbox, args: argparse.Namespace) -> int:
    from sandbox.kubectl import parse_duration, parse_wait_for, resource_name

    condition = parse_wait_for(args.for_)
    timeout = parse_duration(args.timeout)
    for kind, name, ns in _targets(sb, args, "wait"):
        if name is None:
            raise UsageError("wait needs a resource name: TYPE/NAME, TYPE NAME or -f FILE", code="usage.wait")
        sb.wait_for(kind, name, ns, condition.test, timeout)
        met = "deleted" if args.for_ == "delete" else "condition met"
        _out(f"{resource_name({'kind': kind, 'metadata': {'name': name}})} {met}")
    return 0


def cmd_delete(sb: Sandbox, args: argparse.Namespace) -> int:
    targets = _targets(sb, args, "delete")
    if any(name is None for _, name, _ in targets):
        raise UsageError(
            "resource(s) were provided, but no name was specified",
            code="usage.delete",
            hint="e.g. `gdc-sandbox delete deployedmodel/NAME` or `gdc-sandbox delete -f dm.yaml`",
        )
    for kind, name, ns in targets:
        assert name is not None
        answer = sb.delete(kind, name, ns)
        _out(f"{kind.lower()}/{name} deleted")
        for warning in answer.get("warnings", []):
            _err(f"warning: {warning}")
    return 0


def cmd_iam(sb: Sandbox, args: argparse.Namespace) -> int:
    from sandbox.settings import ROLES, SERVING_IDENTITY

    if args.action == "list":
        found = sb.iam("list", project=args.project, identity=args.identity, role=args.role, bucket=args.bucket)
        rows = [("PROJECT", "IDENTITY", "ROLE", "RESOURCE")]
        rows += [(b["project"], b["identity"], b["role"], b["resource"]) for b in found["bindings"]]
        _table(rows)
        return 0
    identity = args.identity or SERVING_IDENTITY
    if args.action == "token":
        _out(sb.iam("token", project=args.project, identity=identity)["token"])
        return 0
    if not args.role:
        raise UsageError(f"iam {args.action} needs --role", code="iam.role-required", hint="roles: " + ", ".join(ROLES))
    result = sb.iam(args.action, project=args.project, identity=identity, role=args.role, bucket=args.bucket)
    b = next(iter(result.values()))
    where = f"bucket {b['resource']}" if ROLES.get(b["role"]) == "bucket" else "the project"
    done = "granted" if args.action == "grant" else "revoked"
    _out(
        f"{done}: {b['identity']} {'now holds' if done == 'granted' else 'no longer holds'} {b['role']} on {where}"
        f" (project {b['project']})"
    )
    return 0


def cmd_runtimes(sb: Sandbox, args: argparse.Namespace) -> int:
    from sandbox.runtimes import catalog, envs

    chosen = catalog.runtimes(args.images)
    if args.action == "list":
        rows = [("RUNTIME", "IMAGES", "STATE", "SIZE", "CREATED IN", "WHAT")]
        for rt in chosen:
            stamp = envs.installed(rt.spec) if rt.spec else None
            size = f"{envs.folder_size(envs.env_dir(rt.spec)) / 1e9:.1f} GB" if rt.spec and stamp else ""
            took = f"{stamp['seconds']}s" if stamp and "seconds" in stamp else ""
            what = rt.spec.title if rt.spec else rt.problem.split(":")[0] if rt.problem else "the sandbox's own Python"
            rows.append((rt.name, ",".join(i.name for i in rt.images), rt.state(), size, took, what))
        _table(rows)
        cache = envs.cache_dir()
        total = envs.folder_size(cache) if cache.exists() else 0
        _out(f"\nruntime cache: {cache} ({total / 1e9:.1f} GB; GDC_SANDBOX_RUNTIME_CACHE moves it)")
        return 0
    todo = [rt for rt in chosen if rt.spec is not None]
    skipped = [rt for rt in chosen if rt.problem]
    for rt in skipped:
        _err(f"skipped {','.join(i.name for i in rt.images)}: {rt.problem}")

    def progress(message: str) -> None:
        _err(f"  ... {message}")

    try:
        for rt in todo:
            assert rt.spec is not None
            if args.action == "download":
                envs.download(rt.spec, Path(args.dir), progress)
                continue
            wheelhouse = envs.wheelhouse_for(rt.spec, Path(args.source)) if args.source else None
            state = "already installed" if envs.installed(rt.spec) else "installed"
            python = envs.ensure(rt.spec, envs.cache_dir(), progress, wheelhouse)
            _out(f"{rt.spec.key}: {state} ({python}) for {', '.join(i.name for i in rt.images)}")
    except envs.RuntimeUnavailable as exc:
        raise SandboxError(
            str(exc),
            code=f"runtimes.{args.action}-failed",
            hint=f"`gdc-sandbox runtimes list` shows what is installed; pip logs to {envs.cache_dir()}/KEY.install.log",
        ) from None
    if args.action == "download":
        _out(f"wheelhouse written to {args.dir}; on the air-gapped machine: gdc-sandbox runtimes install --from DIR")
    return 1 if skipped and args.images else 0


def cmd_mb(sb: Sandbox, args: argparse.Namespace) -> int:
    from sandbox.settings import BUCKET_VIEWER_ROLE, SERVING_IDENTITY

    bucket, created = sb.make_bucket(args.uri)
    _out(f"created bucket s3://{bucket}" if created else f"bucket s3://{bucket} already exists")
    _out(
        f"to deploy models from it, let the serving identity read it: gdc-sandbox iam grant --identity "
        f"{SERVING_IDENTITY} --role {BUCKET_VIEWER_ROLE} --bucket {bucket}"
    )
    return 0


def _render_diagnostic(diag: dict[str, Any]) -> str:
    """A checker diagnostic as `check` prints it, indented under the command's own output."""
    line = f"  {diag.get('severity', 'error')}[{diag.get('code')}] {diag.get('message')}"
    return line + (f"\n    hint: {diag['hint']}" if diag.get("hint") else "")


def _default_endpoint(uri: str) -> str:
    from sandbox.uri import ArtifactURI

    return ArtifactURI.parse(uri).model_id.lower().replace("_", "-").replace(".", "-")[:50] + "-ep"


def _load_manifests(path: Path) -> list[Any]:
    import yaml

    files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json")) if path.is_dir() else [path]
    if not files or not all(f.exists() for f in files):
        raise UsageError(f"no manifest at {path}", code="apply.no-such-file")
    documents: list[Any] = []
    for file in files:
        try:
            documents += [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
        except yaml.YAMLError as exc:
            raise UsageError(f"{file} is not valid YAML: {exc}", code="apply.bad-yaml") from None
    return documents


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        _out("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help formatter at the width it would choose, without importing :mod:`shutil` for it: argparse
    makes a formatter for every argument it adds, and shutil's compression modules cost every start-up."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=terminal_columns() - 2)


def terminal_columns() -> int:
    """What ``shutil.get_terminal_size().columns`` says: ``$COLUMNS``, else the terminal's width, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (ValueError, OSError):
            columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    """A sub-command's parser, formatted by :class:`HelpFormatter`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(formatter_class=HelpFormatter, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with only ``command``'s sub-parser: `main` builds that one alone when the
    command comes first (`gdc-sandbox check DIR` in a hook need not build the other commands' parsers); what it
    parses and prints is the same as with the whole parser (tests/unit/test_cli_imports.py compares)."""
    parser = argparse.ArgumentParser(
        prog="gdc-sandbox", description="Local emulation of GDC Online Prediction.", formatter_class=HelpFormatter
    )
    # Built for one command, the usage still lists them all (as argparse formats the whole parser's choices).
    metavar = "{" + ",".join(COMMANDS) + "}" if command else None
    sub = parser.add_subparsers(dest="command", required=True, metavar=metavar, parser_class=_Parser)
    for name, add in COMMANDS.items():
        if command in (None, name):
            add(sub)
    # kubectl's --kubeconfig is accepted anywhere, so that commands copied from GDC's docs run unchanged.
    for each in [parser, *sub.choices.values()]:
        each.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="accepted and ignored (as with kubectl)")
    return parser


def _up_parser(sub: Any) -> None:
    sub.add_parser("up", help="start the sandbox (idempotent)").set_defaults(func=cmd_up)


def _down_parser(sub: Any) -> None:
    sub.add_parser("down", help="stop every process the sandbox started").set_defaults(func=cmd_down)


def _status_parser(sub: Any) -> None:
    sub.add_parser(
        "status", help="health, port, PID and log of each component (and each container, on the compose backend)"
    ).set_defaults(func=cmd_status)


NAMESPACE_HELP = "project (namespace; default: default)"


def _upload_parser(sub: Any) -> None:
    p = sub.add_parser("upload", help="upload a model folder or file to s3://BUCKET/MODEL_ID/MODEL_VERSION_ID/")
    p.add_argument("source", help="the model version folder (or one file) on this machine")
    p.add_argument("uri", help="s3://BUCKET/MODEL_ID/MODEL_VERSION_ID")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model version")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_upload)


def _ls_parser(sub: Any) -> None:
    p = sub.add_parser("ls", help="list buckets (s3://) or objects under s3://BUCKET/PREFIX")
    p.add_argument("uri", nargs="?", default="s3://", help="s3:// (the buckets) or s3://BUCKET/PREFIX")
    p.set_defaults(func=cmd_ls)


def _deploy_parser(sub: Any) -> None:
    p = sub.add_parser("deploy", help="deploy a model version to an endpoint (writes GDC resources)")
    p.add_argument("uri", help="the uploaded version folder: s3://BUCKET/MODEL_ID/MODEL_VERSION_ID")
    p.add_argument("--image", required=True, help="prebuilt image, e.g. tf2-cpu.2-18 or pytorch-cpu.2-4")
    p.add_argument("--endpoint", help="endpoint name (default: MODEL_ID-ep)")
    p.add_argument("--project", help="project (namespace)")
    p.add_argument("--force", action="store_true", help="skip the preflight gate to see the model server fail")
    p.add_argument("--replicas", type=int, default=1, help="model-server pods (1-8)")
    p.add_argument(
        "--traffic",
        type=int,
        default=100,
        metavar="N",
        help="canary: the new version takes N%% of the endpoint's traffic, the versions serving now keep the rest "
        "(default 100: the new version replaces them)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for Ready (default: GDC_SANDBOX_DEPLOY_TIMEOUT, 120, plus 30)",
    )
    p.add_argument("--no-wait", action="store_true", help="return once the resources are applied, before Ready")
    p.set_defaults(func=cmd_deploy)


def _predict_parser(sub: Any) -> None:
    p = sub.add_parser(
        "predict",
        help="POST {'instances': [...]} to an endpoint",
        description='Call an endpoint\'s :predict. GDC forwards "instances" (and "parameters", which the prebuilt '
        "model servers ignore: a warning says so) to the model server; other keys (signature_name, inputs) need "
        "--raw (:rawPredict), which passes a TF Serving body through unchanged. "
        "Errors are printed as error[code]: message + Hint on stderr (exit 1, or 2 for a malformed request).",
    )
    p.add_argument("endpoint", nargs="?", help="the Endpoint's name (or give it as --endpoint, as `deploy` takes it)")
    p.add_argument("--endpoint", dest="endpoint_option", metavar="ENDPOINT", help=argparse.SUPPRESS)
    p.add_argument("--instances", help="JSON list of instances")
    p.add_argument("--file", help="a request body file")
    p.add_argument("--project", help=NAMESPACE_HELP)
    p.add_argument("--raw", action="store_true", help="rawPredict: pass the body through unchanged")
    p.add_argument("--token", help="bearer token, when prediction authorization is on (see `iam --help`)")
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: print the answer body on stdout even for an error (for scripts)",
    )
    p.set_defaults(func=cmd_predict)


def _check_parser(sub: Any) -> None:
    p = sub.add_parser("check", help="preflight: explain why an artifact will not serve")
    p.add_argument(
        "target", help="the version folder (saved_model.pb or model.mar at its top), a .mar file, or an s3:// URI"
    )
    p.add_argument("--image", help="target prebuilt image (default: newest for the framework)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="json: the report as one JSON object")
    p.set_defaults(func=cmd_check)


def _repro_parser(sub: Any) -> None:
    p = sub.add_parser(
        "repro",
        help="reproduce an artifact: check, upload, deploy --force, predict; writes a report and a scenario",
        description="Reproduce what GDC does with an artifact, in a private sandbox (free ports, a temporary "
        "home) unless --use-running: check, upload, deploy --force, predict. Writes report.md (verdict first), "
        "report.json, request.json, logs/ and scenario/ (scenario.yaml and the artifact: copy that folder into "
        "scenarios/bugs/ to keep the case as a test). Exit 0: it serves on every image; 1: it does not serve "
        "(the reproduction worked); 2: the reproduction could not run.",
    )
    _add_repro_arguments(p)
    p.add_argument("--out", help="output folder (default ./repro-NAME-TIME/)")
    p.set_defaults(func=cmd_repro)


def _scenario_parser(sub: Any) -> None:
    p = sub.add_parser(
        "scenario",
        help="scenario files: `scenario new SOURCE --image IMG` writes a starting one",
        description="scenario new: run the artifact once (like repro) and write a scenario that expects what it "
        "did, pointing at the artifact in place; `pytest FILE` then tells whether it still does.",
    )
    p.add_argument("action", choices=("new",))
    _add_repro_arguments(p)
    p.add_argument("--out", help="the scenario file to write (default scenarios/NAME.yaml)")
    p.set_defaults(func=cmd_scenario)


def _apply_parser(sub: Any) -> None:
    p = sub.add_parser("apply", help="apply ResourcePool/DeployedModel/Endpoint manifests")
    p.add_argument("-f", "--filename", required=True, action="append", help="a YAML file or folder; repeat for several")
    p.add_argument("-n", "--namespace", help=NAMESPACE_HELP)
    p.add_argument("--wait", action="store_true", help="block until DeployedModels are ready")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds --wait waits (default 180)")
    p.set_defaults(func=cmd_apply)


def _get_parser(sub: Any) -> None:
    p = sub.add_parser("get", help="show resources, kubectl-shaped: get KIND [NAME] | TYPE/NAME | -f FILE")
    _target_arguments(p)
    p.add_argument("-o", "--output", help="json | yaml | name | wide | jsonpath=TEMPLATE (kubectl's syntax)")
    p.set_defaults(func=cmd_get)


def _wait_parser(sub: Any) -> None:
    p = sub.add_parser(
        "wait",
        help="wait for a condition: TYPE/NAME --for=condition=Ready | --for=jsonpath='{EXPR}'=VALUE | --for=delete",
    )
    _target_arguments(p)
    p.add_argument(
        "--for", dest="for_", required=True, metavar="CONDITION", help="condition=Ready | jsonpath='{EXPR}'=V | delete"
    )
    p.add_argument("--timeout", default="30s", help="e.g. 300s, 5m (default 30s, as kubectl)")
    p.set_defaults(func=cmd_wait)


def _delete_parser(sub: Any) -> None:
    p = sub.add_parser("delete", help="delete resources: TYPE/NAME | TYPE NAME | -f FILE")
    _target_arguments(p)
    p.set_defaults(func=cmd_delete)


def _target_arguments(p: Any) -> None:
    """kubectl's three ways of naming resources (``KIND [NAME]``, ``TYPE/NAME``, ``-f FILE``), read by
    :func:`_targets`, and the project they are in."""
    p.add_argument("kind", nargs="?", help="resourcepool | deployedmodel | endpoint (or TYPE/NAME)")
    p.add_argument("name", nargs="?")
    p.add_argument("-f", "--filename", action="append", help="the resources named in these manifests")
    p.add_argument("-n", "--namespace", help=NAMESPACE_HELP)


def _iam_parser(sub: Any) -> None:
    from sandbox.settings import BUCKET_VIEWER_ROLE, PREDICTION_USER_ROLE, ROLES, SERVING_IDENTITY

    p = sub.add_parser(
        "iam",
        help="role bindings and prediction tokens: grant | revoke | list | token",
        description="Role bindings of the sandbox's project. Serving reads a bucket as "
        f"{SERVING_IDENTITY}, which needs {BUCKET_VIEWER_ROLE} on it. `list` shows the bindings that match "
        "every filter given (--role, --bucket, --identity, --project).",
        epilog="Prediction authorization is off by default, as in GDC's Preview. To switch it on, restart the "
        "sandbox with GDC_SANDBOX_PREDICTION_AUTH=true (`gdc-sandbox down; GDC_SANDBOX_PREDICTION_AUTH=true "
        "gdc-sandbox up`; `up` says whether it is on). Then every predict needs a bearer token of an identity "
        f"holding {PREDICTION_USER_ROLE}: `gdc-sandbox iam grant --identity alice --role {PREDICTION_USER_ROLE}`, "
        "`gdc-sandbox iam token --identity alice`, `gdc-sandbox predict ENDPOINT --token TOKEN ...` "
        "(or the header Authorization: Bearer TOKEN).",
    )
    p.add_argument("action", choices=("grant", "revoke", "list", "token"))
    p.add_argument("--project", help=NAMESPACE_HELP)
    p.add_argument("--identity", help=f"grant/revoke/token default: {SERVING_IDENTITY}; list: any")
    p.add_argument("--role", help="one of: " + ", ".join(ROLES))
    p.add_argument("--bucket", help="the bucket of a bucket role (it must exist: see `mb`)")
    p.set_defaults(func=cmd_iam)


def _runtimes_parser(sub: Any) -> None:
    p = sub.add_parser(
        "runtimes",
        help="each image's own Python environment: list | install [IMAGE...] [--from DIR] | download DIR [IMAGE...]",
        description="The PyTorch images run Python 3.9 with their own torch and torchvision, tf2-cpu.2-14 its own "
        "TensorFlow; each lives in a virtualenv under one cache folder, created on first deploy (from PyPI) or "
        "ahead of time here. With no network: `runtimes download DIR` on a connected machine, copy DIR, then "
        "`runtimes install --from DIR`.",
    )
    rsub = p.add_subparsers(dest="action", required=True, parser_class=_Parser)
    r = rsub.add_parser("list", help="what each image runs on, installed or not, its size and the cache folder")
    r.add_argument("images", nargs="*", metavar="IMAGE")
    r = rsub.add_parser("install", help="create the runtimes of IMAGE... (default: all) from PyPI or --from DIR")
    r.add_argument("images", nargs="*", metavar="IMAGE")
    r.add_argument("--from", dest="source", metavar="DIR", help="a wheelhouse from `runtimes download` (no network)")
    r = rsub.add_parser("download", help="write the wheels of IMAGE... (default: all) into DIR, to carry offline")
    r.add_argument("dir", metavar="DIR")
    r.add_argument("images", nargs="*", metavar="IMAGE")
    p.set_defaults(func=cmd_runtimes)


def _mb_parser(sub: Any) -> None:
    p = sub.add_parser("mb", help="make a bucket: gdc-sandbox mb s3://BUCKET")
    p.add_argument("uri", help="s3://BUCKET")
    p.set_defaults(func=cmd_mb)


COMMANDS: dict[str, Callable[[Any], None]] = {
    "up": _up_parser,
    "down": _down_parser,
    "status": _status_parser,
    "upload": _upload_parser,
    "ls": _ls_parser,
    "deploy": _deploy_parser,
    "predict": _predict_parser,
    "check": _check_parser,
    "repro": _repro_parser,
    "scenario": _scenario_parser,
    "apply": _apply_parser,
    "get": _get_parser,
    "wait": _wait_parser,
    "delete": _delete_parser,
    "iam": _iam_parser,
    "runtimes": _runtimes_parser,
    "mb": _mb_parser,
}
"""Each command's sub-parser, in the order `gdc-sandbox --help` lists them."""


def _add_repro_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="version folder, .tar.gz/.tgz/.zip of one, a .mar file, or s3://BUCKET/MODEL/VERSION")
    p.add_argument("--image", action="append", required=True, help="prebuilt image; repeat to compare images")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--instances", help="JSON list of instances (default: synthesized from the artifact)")
    group.add_argument("--instances-file", help='a JSON file: a list of instances or {"instances": [...]}')
    p.add_argument("--use-running", action="store_true", help="use the running sandbox instead of a private one")


def program() -> int:
    """`gdc-sandbox` as a program of its own (the console script, ``python -m sandbox.cli``): :func:`main`, after
    telling the garbage collector that what is imported by now lives until exit, so that it never walks those
    objects again (a tenth of what `check` costs over the interpreter's start otherwise). Not for a caller's
    process: it would keep that process's pending garbage for good."""
    gc.freeze()
    return main()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if getattr(args, "kubeconfig", None) is not None:
        _err(f"notice: --kubeconfig {args.kubeconfig} is ignored: gdc-sandbox talks to its own control plane")
    try:
        from sandbox.engine import Sandbox

        return int(args.func(Sandbox(), args))
    except SandboxError as exc:
        _err(exc.render())
        for diag in getattr(exc, "diagnostics", None) or []:
            _err(_render_diagnostic(diag))
        return 2 if args.command in ("repro", "scenario") else exc.exit_code  # 2: the reproduction could not run
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`gdc-sandbox get pods | head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(program())
