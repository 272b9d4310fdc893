"""A JSON caller, a webhook receiver, a moderation endpoint, an in-process job runner, `allow` (more
policies for a client) and `submit_texts` (messages ingested as the API ingests them) for the API tests."""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.test import Client
from rq import SimpleWorker
from rq.scheduler import RQScheduler

from api import clients, ingest, redis_client
from api.models import ApiClient
from console.intake import clean_item_input


class JsonCaller:
    """A Django test client that speaks JSON with a bearer token."""

    def __init__(self, token: str) -> None:
        self.client = Client()
        self.token = token

    def _headers(self, token: str | None) -> dict[str, str]:
        token = self.token if token is None else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def post(self, url: str, body: Any, *, token: str | None = None, raw: bytes | None = None,
             content_type: str = "application/json"):
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(url, data=data, content_type=content_type, headers=self._headers(token))

    def get(self, url: str, *, token: str | None = None, **params: Any):
        return self.client.get(url, params, headers=self._headers(token))


def allow(client: ApiClient, *policies: Any) -> ApiClient:
    """Let `client` classify under `policies` too (Policy rows), through the audited service the pages use."""
    client = ApiClient.objects.get(pk=client.pk)
    allowed = [*client.allowed_policies.all(), *policies]
    return clients.update_client(actor=None, client=client, allowed_policies=allowed,
                                 default_policies=list(client.default_policies.all()), webhook_url=client.webhook_url,
                                 rate_limit_per_minute=client.rate_limit_per_minute)


def submit_texts(client: ApiClient, version: Any, texts: list[str], *, rng: random.Random | None = None,
                 prefix: str = "r") -> list[dict[str, Any]]:
    """Ingest `texts` as messages from `client` under `version`, routed as the API routes them."""
    submissions = [
        ingest.Submission(clean_item_input(kind="message", source=client.source, external_id=f"{prefix}-{i}",
                                             content=text), [version])
        for i, text in enumerate(texts)
    ]
    return ingest.ingest(client=client, submissions=submissions, rng=rng or random.Random(0))


class _LocalServer:
    """A real HTTP server on 127.0.0.1 (an ephemeral port) in a thread of its own, until `close`."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Receiver(_LocalServer):
    """A real HTTP server on 127.0.0.1 that records every POST and answers `statuses` in turn
    (then the last one forever)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.times: list[float] = []  # time.monotonic() of each request
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.times.append(time.monotonic())
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"receiver is down")

            def log_message(self, *args: Any) -> None:
                pass

        self._serve(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


class ModerationServer(_LocalServer):
    """A real HTTP server on 127.0.0.1 standing in for an external moderation endpoint: each POST's JSON
    body is recorded and answered by `answer(body) -> (status, raw body)`, after `delay_s`."""

    def __init__(self, answer: Any, *, delay_s: float = 0.0) -> None:
        self.answer = answer
        self.delay_s = delay_s
        self.requests: list[tuple[dict[str, str], Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                server.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                time.sleep(server.delay_s)
                status, raw = server.answer(body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self._serve(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/moderations"


def moderation_answer(scores_for: Any) -> Any:
    """An `answer` for ModerationServer in OpenAI's shape: `scores_for(text)` gives each input's category scores."""

    def answer(body: dict[str, Any]) -> tuple[int, bytes]:
        results = [{"flagged": False, "categories": {k: v >= 0.5 for k, v in scores_for(text).items()},
                    "category_scores": scores_for(text)} for text in body["input"]]
        return 200, json.dumps({"id": "modr-test", "model": body.get("model", ""), "results": results}).encode()

    return answer


def run_jobs(until: Any, *, timeout: float = 20.0, queues_: tuple[str, ...] = ("webhooks", "default")) -> None:
    """Run the API's RQ jobs in this process, as `rqworker --with-scheduler` would: move due scheduled
    jobs onto their queues, drain the queues with a burst worker, repeat until `until()` or timeout."""
    connection = redis_client.connection()
    deadline = time.monotonic() + timeout
    while True:
        scheduler = RQScheduler(list(queues_), connection=connection)
        scheduler.acquire_locks()
        scheduler.enqueue_scheduled_jobs()
        scheduler.release_locks()
        SimpleWorker([redis_client.queue(name) for name in queues_], connection=connection).work(burst=True)
        if until():
            return
        if time.monotonic() > deadline:
            raise AssertionError("the jobs did not finish in time")
        time.sleep(0.2)
