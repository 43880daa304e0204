"""A counting, fault-injecting HTTP proxy in front of the moto S3 server (tests and benchmarks only).

Clients point `endpoint_url` at the proxy; it forwards every request unchanged (same Host header, so SigV4
signatures stay what the client computed) to the upstream server and relays the answer, except that:

- it counts requests per (method, object key), so a test can assert that a shard was downloaded exactly once;
- for GETs whose key matches `FaultPlan.match`, a seeded fraction `rate` of answers is broken in one of four ways:
  HTTP 500 (an S3 `InternalError`), a dropped connection (closed before any byte of the answer), a truncated
  body (full Content-Length announced, half the body sent, then the socket is closed), or a corrupted body (one
  byte flipped, S3 checksum headers removed, so only the client's own checksum can tell);
- `stall(match)` holds matching GETs after half of the body until `release()` (to kill a client mid-download).

Path-style addressing is assumed (botocore uses it for IP endpoints): `/bucket/key?query`.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import socket
import sys
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

__all__ = ["Fault", "FaultPlan", "S3Proxy"]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
}


class Fault(StrEnum):
    HTTP_500 = "500"
    DROP = "drop"
    TRUNCATE = "truncate"
    CORRUPT = "corrupt"


@dataclass(slots=True)
class FaultPlan:
    """Break a seeded random fraction `rate` of matching GETs, with the faults of `kinds` in turn."""

    rate: float = 0.0
    kinds: tuple[Fault, ...] = tuple(Fault)
    match: str = r".*"
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False)
    _drawn: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"FaultPlan rate={self.rate} must be within [0, 1]")
        self._rng = random.Random(self.seed)
        self._pattern = re.compile(self.match)

    def draw(self, key: str) -> Fault | None:
        if self.rate <= 0.0 or not self._pattern.search(key):
            return None
        if self._rng.random() >= self.rate:
            return None
        self._drawn += 1
        return self.kinds[(self._drawn - 1) % len(self.kinds)]


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(
            sys.exc_info()[1], ConnectionError
        ):  # a client hung up mid-answer: expected in fault tests
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class S3Proxy:
    """Run with `with S3Proxy(upstream) as proxy:`; `proxy.endpoint` is the URL clients use."""

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.hostname is None or parsed.port is None:
            raise ValueError(f"upstream {upstream!r} must look like http://host:port")
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.faults: Counter[Fault] = Counter()
        self.bytes_sent: Counter[str] = Counter()
        self.plan = FaultPlan()
        self._stall_pattern: re.Pattern[str] | None = None
        self._stall_release = threading.Event()
        self.stalled = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def storage_options(self) -> dict[str, object]:
        return {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
            "skip_instance_cache": True,
        }

    def __enter__(self) -> S3Proxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    # ---- test controls -------------------------------------------------------------------------------------
    def set_faults(self, plan: FaultPlan) -> None:
        with self.lock:
            self.plan = plan

    def stall(self, match: str) -> None:
        """Hold GETs of keys matching `match` after half of their body until `release()`."""
        self._stall_release.clear()
        self.stalled.clear()
        self._stall_pattern = re.compile(match)

    def release(self) -> None:
        self._stall_pattern = None
        self._stall_release.set()

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()
            self.faults.clear()
            self.bytes_sent.clear()

    def gets(self, key_suffix: str) -> int:
        """Number of GET requests received for object keys ending with `key_suffix`."""
        with self.lock:
            return sum(
                n
                for (method, key), n in self.requests.items()
                if method == "GET" and key.endswith(key_suffix)
            )


def _make_handler(proxy: S3Proxy) -> type[BaseHTTPRequestHandler]:
    local = threading.local()

    def upstream() -> http.client.HTTPConnection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
            local.conn = conn
        return conn

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        _methods: ClassVar[tuple[str, ...]] = ("GET", "HEAD", "PUT", "POST", "DELETE")

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _forward(self) -> tuple[int, str, list[tuple[str, str]], bytes]:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            for attempt in range(2):
                conn = upstream()
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    return resp.status, resp.reason, resp.getheaders(), data
                except (http.client.HTTPException, OSError):
                    conn.close()
                    local.conn = None
                    if attempt == 1:
                        raise
            raise AssertionError("unreachable")

        def _handle(self) -> None:
            key = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
            key = key.split("/", 1)[1] if "/" in key else ""
            with proxy.lock:
                proxy.requests[(self.command, key)] += 1
                fault = proxy.plan.draw(key) if self.command == "GET" and key else None
                if fault is not None:
                    proxy.faults[fault] += 1
            if fault is Fault.DROP:
                self._drop()
                return
            if fault is Fault.HTTP_500:
                self._send(500, "Internal Server Error", [("Content-Type", "application/xml")], _ERROR_500)
                return
            try:
                status, reason, headers, data = self._forward()
            except (
                http.client.HTTPException,
                OSError,
            ):  # upstream gone (shutting down): answer like a dead server
                self._drop()
                return
            stall = proxy._stall_pattern
            if self.command == "GET" and status < 300 and len(data) > 1:
                if fault is Fault.CORRUPT:
                    flipped = bytearray(data)
                    flipped[len(data) // 2] ^= 0x5A
                    data = bytes(flipped)
                    # Like a server that sends no checksums: only the client's own verification can notice.
                    headers = [(k, v) for k, v in headers if not k.lower().startswith("x-amz-checksum")]
                elif fault is Fault.TRUNCATE or (stall is not None and stall.search(key)):
                    self._send_partial(status, reason, headers, data, key, stall=fault is not Fault.TRUNCATE)
                    return
            self._send(status, reason, headers, data, key)

        def _send(
            self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes, key: str = ""
        ) -> None:
            self.send_response_only(status, reason)
            for name, value in headers:
                keep_length = (
                    self.command == "HEAD"
                )  # a HEAD answer announces the object's length, sends no body
                if name.lower() not in _HOP_BY_HOP and (keep_length or name.lower() != "content-length"):
                    self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
                with proxy.lock:
                    proxy.bytes_sent[key] += len(data)

        def _send_partial(
            self,
            status: int,
            reason: str,
            headers: list[tuple[str, str]],
            data: bytes,
            key: str,
            *,
            stall: bool,
        ) -> None:
            self.send_response_only(status, reason)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            with proxy.lock:
                proxy.bytes_sent[key] += len(data) // 2
            if stall:
                proxy.stalled.set()
                proxy._stall_release.wait(timeout=120)
            self._drop()

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def do_GET(self) -> None:
            self._handle()

        do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    return Handler


_ERROR_500 = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>injected by S3Proxy</Message><RequestId>0</RequestId></Error>"
)
