"""``gdc-sandbox``: a thin front door. Parse, call :class:`sandbox.engine.Sandbox`, print, return an exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.errors import SandboxError, UsageError
from sandbox.kinds import KINDS, canonical_kind
from sandbox.kubectl import format_items, parse_duration, parse_wait_for, resource_name, split_type_name
from sandbox.settings import SERVING_IDENTITY, Settings

if TYPE_CHECKING:
    from sandbox.engine import Sandbox

# Start-up time matters (scripts poll `get`, hooks run `check`): a command imports what only it needs
# (yaml, jsonpath, boto3, the checker) inside its function; tests/unit/test_cli_imports.py keeps it so.


def _out(text: str = "") -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_up(sb: Sandbox, args: argparse.Namespace) -> int:
    state, started = sb.up()
    _out(("sandbox started" if started else "sandbox already running") + f" (home {sb.settings.home})")
    _out(
        f"  S3 endpoint:    {state.s3_url}   bucket s3://{sb.settings.bucket}"
        f"  (credentials: {sb.stack.credentials_path})"
    )
    _out(f"  control plane:  {state.gateway_url}")
    _out(f"  predict URLs:   {state.gateway_url}/endpoints/<project>/<endpoint>/v1/model:predict")
    _out(f"  project:        {sb.settings.project}   serving identity: {SERVING_IDENTITY}")
    return 0


def cmd_down(sb: Sandbox, args: argparse.Namespace) -> int:
    stopped = sb.down()
    _out("stopped: " + ", ".join(stopped) if stopped else "nothing was running")
    return 0


def cmd_status(sb: Sandbox, args: argparse.Namespace) -> int:
    components = sb.stack.status()
    if not components:
        _out(f"sandbox is not running (home {sb.settings.home})")
        return 3
    rows = [("COMPONENT", "STATE", "URL", "PID", "LOG")]
    rows += [(c.name, c.state, c.url, str(c.pid), c.log) for c in components]
    rows += [
        (f"pod/{p['deployedModel']}", "running" if p["alive"] else "crashed", p["url"], str(p["pid"]), p["log"])
        for p in sb.stack.pods()
    ]
    _table(rows)
    return 0 if all(c.state == "running" for c in components) else 1


def cmd_upload(sb: Sandbox, args: argparse.Namespace) -> int:
    result = sb.upload(Path(args.source), args.uri, overwrite=args.overwrite, progress=not args.quiet)
    _out(f"uploaded {len(result.keys)} file(s), {result.total_bytes} bytes to {result.uri} (checksums verified)")
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
        wait=not args.no_wait,
        timeout=args.timeout,
        on_progress=lambda m: _err(f"  ... {m}"),
    )
    for warning in deployment.warnings:
        _err(f"warning: {warning}")
    if args.no_wait:
        _out(
            f"DeployedModel {deployment.deployed_model} applied; watch it with "
            f"`gdc-sandbox get deployedmodel {deployment.deployed_model} -o jsonpath={{.status.primaryCondition}}`"
        )
        return 0
    _out(
        f"deployed {args.uri} as DeployedModel {deployment.deployed_model}"
        f" (deployedModelId {deployment.deployed_model_id})"
    )
    _out(f"endpoint {deployment.endpoint} is ready")
    _out(f"predict URL: {deployment.predict_url}")
    return 0


def cmd_predict(sb: Sandbox, args: argparse.Namespace) -> int:
    if args.file:
        body = Path(args.file).read_bytes()
    elif args.instances is not None:
        try:
            instances = json.loads(args.instances)
        except ValueError as exc:
            raise UsageError(f"--instances is not valid JSON: {exc}", hint="e.g. --instances '[[1.0, 2.0]]'") from None
        body = json.dumps({"instances": instances}).encode()
    else:
        raise UsageError("give --instances JSON or --file request.json")
    status, answer = sb.predict(args.endpoint, body=body, namespace=args.project, raw=args.raw, token=args.token)
    _out(json.dumps(answer))
    return 0 if status < 400 else 1


def cmd_check(sb: Sandbox, args: argparse.Namespace) -> int:
    report = sb.check(args.target, args.image)
    _out(json.dumps(report.to_dict()) if args.format == "json" else report.render_text())
    return 0 if report.ok else 1


def cmd_apply(sb: Sandbox, args: argparse.Namespace) -> int:
    documents = [doc for name in args.filename for doc in _load_manifests(Path(name))]
    for item in sb.apply(documents, args.namespace):
        for warning in item.get("warnings", []):
            _err(f"Warning: {item['kind']} {item['name']}: {warning}")
        _out(f"{resource_name({'kind': item['kind'], 'metadata': item})} {item['action']}")
    if args.wait:
        for doc in documents:
            if doc.get("kind") == "DeployedModel":
                ns = doc["metadata"].get("namespace") or args.namespace or sb.settings.project
                sb.wait_ready("DeployedModel", doc["metadata"]["name"], ns, args.timeout)
                _out(f"{resource_name(doc)} ready")
    return 0


def _targets(sb: Sandbox, args: argparse.Namespace) -> list[tuple[str, str | None, str | None]]:
    """(kind, name, namespace) from KIND [NAME], TYPE/NAME, or -f FILE (kubectl's three ways)."""
    if args.filename:
        if args.kind:
            raise UsageError("give either -f FILE or a resource type, not both", code="usage.get")
        documents = [d for name in args.filename for d in _load_manifests(Path(name))]
        named = [d for d in documents if isinstance(d, dict) and isinstance(d.get("metadata"), dict)]
        ns = args.namespace
        return [
            (canonical_kind(str(d.get("kind"))), d["metadata"]["name"], d["metadata"].get("namespace") or ns)
            for d in named
        ]
    if not args.kind:
        raise UsageError(
            "you must specify the type of resource", code="usage.get", hint="e.g. `gdc-sandbox get deployedmodels`"
        )
    if args.kind == "all" and not args.name:
        return [(kind, None, args.namespace) for kind in KINDS]
    kind, name = split_type_name(args.kind, args.name)
    return [(kind, name, args.namespace)]


def cmd_get(sb: Sandbox, args: argparse.Namespace) -> int:
    targets = _targets(sb, args)
    items = [item for kind, name, ns in targets for item in sb.get(kind, name, ns)]
    single = len(targets) == 1 and targets[0][1] is not None
    text = format_items(items, args.output or "", single)
    if text or (args.output or "").startswith("jsonpath="):
        _out(text)
    elif not items:
        _err(f"No resources found in {args.namespace or sb.settings.project} namespace.")
    return 0


def cmd_wait(sb: Sandbox, args: argparse.Namespace) -> int:
    condition = parse_wait_for(args.for_)
    timeout = parse_duration(args.timeout)
    for kind, name, ns in _targets(sb, args):
        if name is None:
            raise UsageError("wait needs a resource name: TYPE/NAME, TYPE NAME or -f FILE", code="usage.wait")
        sb.wait_for(kind, name, ns, condition.test, timeout)
        met = "deleted" if args.for_ == "delete" else "condition met"
        _out(f"{resource_name({'kind': kind, 'metadata': {'name': name}})} {met}")
    return 0


def cmd_delete(sb: Sandbox, args: argparse.Namespace) -> int:
    sb.delete(args.kind, args.name, args.namespace)
    _out(f"{args.kind.lower()}/{args.name} deleted")
    return 0


def cmd_iam(sb: Sandbox, args: argparse.Namespace) -> int:
    if args.action == "list":
        rows = [("PROJECT", "IDENTITY", "ROLE", "RESOURCE")]
        for b in sb.iam("list", project=args.project)["bindings"]:
            rows.append((b["project"], b["identity"], b["role"], b["resource"]))
        _table(rows)
        return 0
    if args.action == "token":
        _out(sb.iam("token", project=args.project, identity=args.identity)["token"])
        return 0
    result = sb.iam(args.action, project=args.project, identity=args.identity, role=args.role, bucket=args.bucket)
    _out(f"{args.action}: {json.dumps(next(iter(result.values())))}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gdc-sandbox", description="Local emulation of GDC Online Prediction.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the sandbox (idempotent)").set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop every process the sandbox started").set_defaults(func=cmd_down)
    sub.add_parser("status", help="health, port, PID and log of each component").set_defaults(func=cmd_status)

    p = sub.add_parser("upload", help="upload a model folder or file to s3://BUCKET/MODEL_ID/MODEL_VERSION_ID/")
    p.add_argument("source")
    p.add_argument("uri")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model version")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_upload)

    p = sub.add_parser("ls", help="list buckets (s3://) or objects under s3://BUCKET/PREFIX")
    p.add_argument("uri", nargs="?", default="s3://")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("deploy", help="deploy a model version to an endpoint (writes GDC resources)")
    p.add_argument("uri")
    p.add_argument("--image", required=True, help="prebuilt image, e.g. tf2-cpu.2-18 or pytorch-cpu.2-4")
    p.add_argument("--endpoint", help="endpoint name (default: MODEL_ID-ep)")
    p.add_argument("--project", help="project (namespace)")
    p.add_argument("--force", action="store_true", help="skip the preflight gate to see the model server fail")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("predict", help="POST {'instances': [...]} to an endpoint")
    p.add_argument("endpoint")
    p.add_argument("--instances", help="JSON list of instances")
    p.add_argument("--file", help="a request body file")
    p.add_argument("--project")
    p.add_argument("--raw", action="store_true", help="rawPredict: pass the body through unchanged")
    p.add_argument("--token", help="bearer token, when prediction authorization is on")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("check", help="preflight: explain why an artifact will not serve")
    p.add_argument("target", help="version folder, .mar file, or s3:// URI")
    p.add_argument("--image", help="target prebuilt image (default: newest for the framework)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("apply", help="apply ResourcePool/DeployedModel/Endpoint manifests")
    p.add_argument("-f", "--filename", required=True, action="append", help="a YAML file or folder; repeat for several")
    p.add_argument("-n", "--namespace")
    p.add_argument("--wait", action="store_true", help="block until DeployedModels are ready")
    p.add_argument("--timeout", type=float, default=180.0)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("get", help="show resources, kubectl-shaped: get KIND [NAME] | TYPE/NAME | -f FILE")
    p.add_argument("kind", nargs="?", help="resourcepool | deployedmodel | endpoint (or TYPE/NAME)")
    p.add_argument("name", nargs="?")
    p.add_argument("-f", "--filename", action="append", help="the resources named in these manifests")
    p.add_argument("-n", "--namespace")
    p.add_argument("-o", "--output", help="json | yaml | name | wide | jsonpath=TEMPLATE (kubectl's syntax)")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser(
        "wait",
        help="wait for a condition: TYPE/NAME --for=condition=Ready | --for=jsonpath='{EXPR}'=VALUE | --for=delete",
    )
    p.add_argument("kind", nargs="?", help="TYPE/NAME, or TYPE then NAME")
    p.add_argument("name", nargs="?")
    p.add_argument("-f", "--filename", action="append", help="the resources named in these manifests")
    p.add_argument("-n", "--namespace")
    p.add_argument("--for", dest="for_", required=True, metavar="CONDITION")
    p.add_argument("--timeout", default="30s", help="e.g. 300s, 5m (default 30s, as kubectl)")
    p.set_defaults(func=cmd_wait)

    p = sub.add_parser("delete", help="delete a resource")
    p.add_argument("kind")
    p.add_argument("name")
    p.add_argument("-n", "--namespace")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("iam", help="role bindings and prediction tokens: grant | revoke | list | token")
    p.add_argument("action", choices=("grant", "revoke", "list", "token"))
    p.add_argument("--project")
    p.add_argument("--identity", default=SERVING_IDENTITY)
    p.add_argument("--role")
    p.add_argument("--bucket")
    p.set_defaults(func=cmd_iam)

    p = sub.add_parser(
        "runtimes",
        help="each image's own Python environment: list | install [IMAGE...] [--from DIR] | download DIR [IMAGE...]",
        description="The PyTorch images run Python 3.9 with their own torch and torchvision, tf2-cpu.2-14 its own "
        "TensorFlow; each lives in a virtualenv under one cache folder, created on first deploy (from PyPI) or "
        "ahead of time here. With no network: `runtimes download DIR` on a connected machine, copy DIR, then "
        "`runtimes install --from DIR`.",
    )
    rsub = p.add_subparsers(dest="action", required=True)
    r = rsub.add_parser("list", help="what each image runs on, installed or not, its size and the cache folder")
    r.add_argument("images", nargs="*", metavar="IMAGE")
    r = rsub.add_parser("install", help="create the runtimes of IMAGE... (default: all) from PyPI or --from DIR")
    r.add_argument("images", nargs="*", metavar="IMAGE")
    r.add_argument("--from", dest="source", metavar="DIR", help="a wheelhouse from `runtimes download` (no network)")
    r = rsub.add_parser("download", help="write the wheels of IMAGE... (default: all) into DIR, to carry offline")
    r.add_argument("dir", metavar="DIR")
    r.add_argument("images", nargs="*", metavar="IMAGE")
    p.set_defaults(func=cmd_runtimes)
    # kubectl's --kubeconfig is accepted anywhere, so that commands copied from GDC's docs run unchanged.
    for command in [parser, *sub.choices.values()]:
        command.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="accepted and ignored (as with kubectl)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "kubeconfig", None) is not None:
        _err(f"notice: --kubeconfig {args.kubeconfig} is ignored: gdc-sandbox talks to its own control plane")
    try:
        from sandbox.engine import Sandbox

        return int(args.func(Sandbox(Settings()), args))
    except SandboxError as exc:
        _err(exc.render())
        diagnostics = getattr(exc, "diagnostics", None)
        for diag in diagnostics or []:
            _err(f"  {diag.get('severity', 'error')}[{diag.get('code')}] {diag.get('message')}")
            if diag.get("hint"):
                _err(f"    hint: {diag['hint']}")
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`gdc-sandbox get pods | head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
