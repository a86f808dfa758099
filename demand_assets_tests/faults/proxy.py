"""A real HTTP fault proxy in front of the moto server: the pipeline's AWS SDK clients talk to
it through `AWS_ENDPOINT_URL`, it forwards every request, and a fault plan makes chosen calls
fail on the wire, the way AWS fails them.

A `Fault` names an AWS service and operation (and, for S3, a substring of the key), the first
matching call to hit (`nth`, 1-based, counted from when the fault is armed) and how many
consecutive matching calls to hit (`times`). What happens to a hit call:

- `error`: answered with an AWS error (`status`, `code`): an S3 XML error document, or the JSON
  error of Kinesis, Glue and Athena. The request never reaches AWS.
- `hold`: the connection is held without an answer for `hold_seconds` (past the client's read
  timeout), or until `release()`, then closed. With `forward_first`, the request reaches AWS
  before the answer is held: the write happened, the client cannot know it did.
- `reset`: the connection is closed without an answer.
- `respond`: answered 200 with `body` instead of AWS's answer (after forwarding the request).

A burst (`times` > 1) on S3 keeps hitting the key of its first hit (`one_key`), as when one
object's writes keep failing while a run writes several concurrently.

Nothing of the pipeline is patched: the SDK's own retries, timeouts and error parsing run as
they would against AWS. `calls` records every call (service, operation, key, what happened).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import re
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import orjson

_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
}


@dataclass
class Fault:
    service: str  # "s3", "kinesis", "glue", "athena"
    operation: str  # the AWS operation name, e.g. "PutObject", "GetRecords"
    action: str = "error"  # "error" | "hold" | "reset" | "respond"
    nth: int = 1
    times: int | None = 1  # None: every matching call until the fault is cleared (an outage)
    key_contains: str | None = None  # S3 only: the object key must contain this
    status: int = 500
    code: str = "InternalError"
    message: str = "injected by the fault proxy"
    hold_seconds: float = 5.0
    forward_first: bool = False
    body: bytes = b""
    one_key: bool = True  # S3: after its first hit, the fault hits only calls on that key
    # state, fresh in every copy (`dataclasses.replace(fault)`, `fault.fresh()`)
    seen: int = field(default=0, init=False)  # matching calls so far
    hits: int = field(default=0, init=False)  # calls this fault hit
    keys_hit: list = field(default_factory=list, init=False)
    held: threading.Event = field(default_factory=threading.Event, init=False)  # a call is held
    released: threading.Event = field(default_factory=threading.Event, init=False)
    _key: str | None = field(default=None, init=False)

    def fresh(self) -> Fault:
        """The same plan, not yet armed: module-level plans are shared by test runs."""
        return dataclasses.replace(self)

    def describe(self) -> str:
        where = f"{self.service} {self.operation}"
        if self.key_contains:
            where += f" (key ~ {self.key_contains!r})"
        if self.times is None:
            calls = f"every call from call {self.nth} on, until cleared"
        elif self.times == 1:
            calls = f"call {self.nth}"
        else:
            calls = f"calls {self.nth}..{self.nth + self.times - 1}"
        if self.action == "error":
            what = f"{self.status} {self.code}"
        elif self.action == "hold":
            what = f"held {self.hold_seconds:g} s" + (
                " after reaching AWS" if self.forward_first else ""
            )
        else:
            what = self.action
        return f"{where}, {calls}: {what}"

    def release(self) -> None:
        self.released.set()

    def _matches(self, call: Call) -> bool:
        if (call.service, call.operation) != (self.service, self.operation):
            return False
        if self.one_key and self._key is not None and call.key != self._key:
            return False
        return self.key_contains is None or self.key_contains in (call.key or "")

    def _take(self, call: Call) -> bool:
        if not self._matches(call):
            return False
        self.seen += 1
        if self.seen >= self.nth and (self.times is None or self.seen < self.nth + self.times):
            self.hits += 1
            self._key = call.key
            self.keys_hit.append(call.key)
            return True
        return False


@dataclass
class Call:
    service: str
    operation: str
    key: str | None
    outcome: str = "forwarded"


def operation_of(method: str, path: str, query: str, headers) -> tuple[str, str, str | None]:
    """(service, operation, S3 key) of a request, as the SDK signed and addressed it."""
    target = headers.get("X-Amz-Target")
    signed = _SERVICE.search(headers.get("Authorization", ""))
    service = signed.group(1) if signed else "?"
    if target:  # the JSON protocols: Kinesis, Glue, Athena
        return service, target.rsplit(".", 1)[-1], None
    if service != "s3":
        return service, f"{method} {path}", None
    parts = unquote(path).lstrip("/").split("/", 1)
    key = parts[1] if len(parts) == 2 and parts[1] else None
    params = {p.split("=", 1)[0] for p in query.split("&") if p}
    if key is None:
        if method == "POST" and "delete" in params:
            return service, "DeleteObjects", None
        if method == "GET" and "list-type" in params:
            return service, "ListObjectsV2", None
        return service, f"{method}Bucket", None
    if method == "PUT":
        return service, "UploadPart" if "partNumber" in params else "PutObject", key
    if method == "POST":
        if "uploads" in params:
            return service, "CreateMultipartUpload", key
        return service, "CompleteMultipartUpload", key
    names = {"GET": "GetObject", "HEAD": "HeadObject", "DELETE": "DeleteObject"}
    return service, names.get(method, method), key


def error_response(service: str, fault: Fault) -> tuple[int, dict, bytes]:
    if service == "s3":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
            "<RequestId>fault-proxy</RequestId></Error>"
        ).encode()
        return fault.status, {"Content-Type": "application/xml"}, body
    body = orjson.dumps({"__type": fault.code, "message": fault.message})
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": fault.code}
    return fault.status, headers, body


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that went away (killed, timed out) is what these tests do; stay quiet."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultProxy:
    """A threaded reverse proxy on 127.0.0.1 in front of `upstream` (the moto server)."""

    def __init__(self, upstream: str):
        parsed = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parsed.hostname, parsed.port
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        for fault in self.faults:
            fault.release()
        self._server.shutdown()
        self._server.server_close()

    def add(self, *faults: Fault) -> list[Fault]:
        """Arm fresh copies of the plans; returns them (they count calls and hits)."""
        armed = [fault.fresh() for fault in faults]
        with self._lock:
            self.faults.extend(armed)
        return armed

    def clear(self) -> None:
        with self._lock:
            for fault in self.faults:
                fault.release()
            self.faults = []

    def count(self, service: str, operation: str, key_contains: str = "") -> int:
        with self._lock:
            return sum(
                1
                for c in self.calls
                if (c.service, c.operation) == (service, operation)
                and key_contains in (c.key or "")
            )

    def _plan(self, call: Call) -> Fault | None:
        with self._lock:
            self.calls.append(call)
            for fault in self.faults:
                if fault._take(call):
                    return fault
        return None

    def _forward(self, method: str, target: str, headers: dict, body: bytes):
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            connection.request(method, target, body=body or None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            return response.status, response.getheaders(), payload
        finally:
            connection.close()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _serve(self):
                body = self._body()
                split = urlsplit(self.path)
                service, operation, key = operation_of(
                    self.command, split.path, split.query, self.headers
                )
                call = Call(service, operation, key)
                fault = proxy._plan(call)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if body and "Content-Length" not in headers:
                    headers["Content-Length"] = str(len(body))
                if fault is None or fault.action == "respond" or fault.forward_first:
                    status, upstream_headers, payload = proxy._forward(
                        self.command, self.path, headers, body
                    )
                if fault is None:
                    self._answer(status, upstream_headers, payload)
                    return
                call.outcome = fault.action
                if fault.action == "error":
                    status, error_headers, payload = error_response(service, fault)
                    self._answer(status, list(error_headers.items()), payload)
                elif fault.action == "respond":
                    self._answer(200, [("Content-Type", "application/x-amz-json-1.1")], fault.body)
                elif fault.action == "hold":
                    fault.held.set()
                    fault.released.wait(fault.hold_seconds)
                    self._drop()
                else:  # reset
                    self._drop()

            def _answer(self, status: int, headers, payload: bytes):
                self.send_response(status)
                for name, value in headers:
                    if name.lower() in _HOP_BY_HOP or name.lower() == "content-length":
                        continue
                    self.send_header(name, value)
                if self.command == "HEAD":
                    length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
                    self.send_header("Content-Length", length)
                    self.end_headers()
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _drop(self):
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

        return Handler


def wait_for(event: threading.Event, what: str, timeout: float = 60.0) -> None:
    if not event.wait(timeout):
        raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
