"""The REST API: TF Serving's ``/v1/models/...`` routes as a thin WSGI layer over the manager, served over HTTP/1.1
with keep-alive (the standard library's server; werkzeug's request parsing helpers)."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, cast
from urllib.parse import unquote, urlsplit

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.serving import DechunkedInput
from werkzeug.wsgi import LimitedStream

from . import errors, json_output, json_predict, metadata, runner, tflog
from .json_values import parse_json
from .manager import ModelManager

_PREDICT = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.I
)
_STATUS = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?", re.I)
_HEADERS = [("Content-Type", "application/json")]
_MAX_VERSION = 2**63 - 1

StartResponse = Callable[..., Any]


def _version(text: str | None) -> int | None:
    if not text:
        return None
    v = int(text)
    if v > _MAX_VERSION:
        raise errors.invalid_argument(f"Failed to convert version: {text} to numeric.")
    return v


def _spec(version: str | None, label: str | None) -> tuple[int | None, str | None]:
    v = _version(version)
    if v is not None and label:
        raise errors.invalid_argument(f"Both model version ({v}) and model version label ({label}) cannot be supplied.")
    return v, label or None


class RestApi:
    """WSGI app: status, metadata, predict, classify and regress."""

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if not path.lower().startswith("/v1/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not Found"]
        try:
            body = self._dispatch(method, path, environ)
            status = "200 OK"
        except errors.ServingError as exc:
            code = exc.http_status
            body, status = json_output.error_json(exc.message), f"{code} {HTTP_STATUS_CODES.get(code, 'Error')}"
        except RecursionError:  # Python's JSON and the converters recurse; rapidjson's limit is the C stack
            message = "JSON Parse error: the document nests too deeply to parse (a limit of this Python server)"
            body, status = json_output.error_json(message), "400 Bad Request"
        except Exception as exc:  # never let a bug look like a dropped connection
            tflog.error("tensorflow_serving/model_servers/http_server.cc:0", f"internal error: {exc!r}")
            body, status = json_output.error_json(f"{type(exc).__name__}: {exc}"), "500 Internal Server Error"
        data = body.encode("utf-8")
        start_response(status, [*_HEADERS, ("Content-Length", str(len(data)))])
        return [data]

    def _dispatch(self, method: str, path: str, environ: dict[str, Any]) -> str:
        malformed = errors.invalid_argument(f"Malformed request: {method} {path}")
        if method == "POST":
            m = _PREDICT.fullmatch(path)
            if not m:
                raise malformed
            name, version, label = m.group(1), *_spec(m.group(2), m.group(3))
            length = environ.get("CONTENT_LENGTH")
            stream = environ["wsgi.input"]
            chunked = bool(environ.get("wsgi.input_terminated"))
            body = stream.read(int(length)) if length else (stream.read() if chunked else b"")
            verb = m.group(4)
            if verb == "predict":
                return self.predict(name, version, label, body)
            if verb in ("classify", "regress"):
                return self.classify_regress(verb, name, version, label, body)
            raise malformed
        if method == "GET":
            m = _STATUS.fullmatch(path)
            if not m:
                raise malformed
            name = m.group(1) or ""
            if not name:
                raise errors.invalid_argument("Missing model name in request.")
            version, label = _spec(m.group(2), m.group(3))
            if m.group(4) == "metadata":
                return metadata.metadata_json(self.manager.resolve(name, version, label))
            return metadata.status_json(self.manager.status(name, version, label))
        raise malformed

    def predict(self, name: str, version: int | None, label: str | None, body: bytes) -> str:
        doc = parse_json(body)
        signame = json_predict.signature_name(doc)
        servable = self.manager.resolve(name, version, label)
        sig = runner.rest_input_info(servable, signame)
        infos = {k: v.dtype for k, v in sig.inputs.items()}
        inputs, fmt = json_predict.predict_inputs(doc, infos)
        outputs = runner.run_signature(servable, sig, inputs)
        return json_output.predict_json(outputs, fmt)

    def classify_regress(self, verb: str, name: str, version: int | None, label: str | None, body: bytes) -> str:
        doc = parse_json(body)
        signame = json_predict.signature_name(doc)
        inp = json_predict.examples_input(doc)
        servable = self.manager.resolve(name, version, label)
        if verb == "classify":
            return json_output.classification_json(runner.classify(servable, signame, inp))
        return json_output.regression_json(runner.regress(servable, signame, inp))


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as TF Serving's own server (werkzeug's closes every connection): one call of the
    WSGI app per request, its body read or drained before the next request on the connection."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # a kept-alive connection must not wait for the client's delayed ACK
    wbufsize = 1 << 16  # status, headers and a small body leave in one write (flushed after each request)
    server: _Server

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # every method goes to the app, which answers TF Serving's errors
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        rfile = cast(IO[bytes], self.rfile)
        stream: io.RawIOBase = DechunkedInput(rfile) if chunked else LimitedStream(rfile, int(length or 0))
        environ = {
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(url.path).encode().decode("latin-1"),
            "QUERY_STRING": url.query,
            "CONTENT_LENGTH": length or "",
            "wsgi.input": stream,
            "wsgi.input_terminated": chunked,
        }
        answer: list[tuple[str, list[tuple[str, str]]]] = []
        data = b"".join(self.server.app(environ, lambda status, headers: answer.append((status, headers))))
        while stream.read(65536):  # what the app did not read, so the next request starts where it should
            pass
        status, headers = answer[0]
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError):
            pass  # the client went away

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: RestApi) -> None:
        super().__init__(address, _Handler)
        self.app = app


def serve_rest(manager: ModelManager, host: str, port: int) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start the REST server in a daemon thread; return the server and its thread."""
    server = _Server((host, port), RestApi(manager))
    t = threading.Thread(target=server.serve_forever, name="rest", daemon=True)
    t.start()
    return server, t
