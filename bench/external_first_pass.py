"""External first-pass benchmark: what one request to a moderation endpoint costs the intake path, by
batch size, against a local endpoint that answers at once (so the figures are the client's own cost:
the event loop, the connection, JSON both ways, reading the scores), and what a skipped request costs
while the circuit breaker is open.

    .venv/bin/python bench/external_first_pass.py [--requests 200]

Plain Python (no Django): it uses safeguard.moderation_endpoint only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from safeguard.moderation_endpoint import (  # noqa: E402 (after the path)
    EndpointConfig,
    ModerationEndpoint,
    ScoringFailed,
)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write: unbuffered, Nagle and the client's delayed ACK add ~40 ms.
    wbufsize = 1 << 16

    def do_POST(self) -> None:  # noqa: N802 (the http.server API)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        raw = json.dumps({"results": [{"category_scores": {"spam": 0.01, "scam": 0.02, "hate": 0.0}}
                                      for _ in body["input"]]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


def per_request_ms(endpoint: ModerationEndpoint, batch: int, requests: int) -> list[float]:
    texts = [f"an ordinary message of a few words, number {i}" for i in range(batch)]
    endpoint.score(texts)  # warm up
    out = []
    for _ in range(requests):
        started = time.perf_counter()
        endpoint.score(texts)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/moderations"
    endpoint = ModerationEndpoint(EndpointConfig(url=url, category_map={"spam": "violation", "scam": "violation"}))
    print(f"{'batch':>6} {'median ms':>10} {'p95 ms':>8} {'µs/item':>8}")
    for batch in (1, 10, 100, 1000):
        times = per_request_ms(endpoint, batch, max(args.requests // (1 + batch // 100), 10))
        median, p95 = statistics.median(times), statistics.quantiles(times, n=20)[-1]
        print(f"{batch:>6} {median:>10.2f} {p95:>8.2f} {median * 1000 / batch:>8.1f}")
    server.shutdown()
    endpoint.breaker.failed("benchmark: the endpoint is down")
    started = time.perf_counter()
    for _ in range(10_000):
        with contextlib.suppress(ScoringFailed):
            endpoint.score(["hello"])
    print(f"skipped while the breaker is open: {(time.perf_counter() - started) * 100:.2f} µs a request")


if __name__ == "__main__":
    main()
