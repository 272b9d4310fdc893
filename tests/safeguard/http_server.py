"""A real HTTP server on 127.0.0.1 whose answers each test scripts: the OpenAI-compatible engines' and
the external first pass's tests talk to it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict is sent as JSON, bytes as they are
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


Behaviour = Callable[[dict[str, Any], int], Reply]


class FakeServer:
    """A ThreadingHTTPServer that answers POST /v1/chat/completions through `behaviour`.

    behaviour(body, n) gets the parsed request body and the 1-based number of this
    request (over the server's life) and returns a Reply. The server records every
    body and header set and the highest number of requests it held at once.
    """

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with server.lock:
                    server.bodies.append(json.loads(raw))
                    server.headers.append(dict(self.headers))
                    number = len(server.bodies)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    reply = server.behaviour(server.bodies[number - 1], number)
                    if reply.delay_s:
                        server.stopping.wait(reply.delay_s)
                    payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to answer
                finally:
                    with server.lock:
                        server.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A short poll interval keeps shutdown() (and so each test's teardown) quick.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        deadline = time.monotonic() + 2
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=2)


def unreachable_url() -> str:
    """The base URL of a port on 127.0.0.1 that nothing listens on: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
