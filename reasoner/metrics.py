"""The engine's Prometheus metrics, observed by `reasoner.pipeline.Pipeline.generate` in the reasoner
worker, and the worker's own exposition (`serve`, started by `manage.py safeguard_worker` when
SAFEGUARD_METRICS_PORT is set): the worker is a process of its own, which the web app's /metrics
cannot see into.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Histogram, start_http_server

import safeguard

log = logging.getLogger("console.reasoner")

# A batch of 64 on a GPU takes seconds; an HTTP engine's batch, as long as its slowest request.
BATCH_DURATION = Histogram(
    "console_engine_batch_duration_seconds", "Time the engine took for one batch of prompts",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)
BATCH_SIZE = Histogram(
    "console_engine_batch_size", "Prompts handed to the engine in one batch",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
PROMPT_TOKENS = Histogram(
    "console_engine_prompt_tokens", "Prompt tokens of one completion (policy and content)",
    buckets=(256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072),
)
COMPLETION_TOKENS = Histogram(
    "console_engine_completion_tokens", "Tokens the model wrote for one completion (reasoning and answer)",
    buckets=(16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384),
)
COMPLETIONS = Counter(
    "console_engine_completions_total", "Completions the engine returned, by finish reason (stop, length, error)",
    ["finish_reason"],
)
ERRORS = Counter(
    "console_engine_errors_total",
    "Batches the engine failed as a whole, by kind: engine_error (it said so), exception (it raised something "
    "else), mismatch (it returned a different number of completions)",
    ["kind"],
)
FINISH_REASONS = ("stop", "length", "error")
for _reason in (*FINISH_REASONS, "other"):
    COMPLETIONS.labels(_reason)  # every series exists from the start, at 0
for _kind in ("engine_error", "exception", "mismatch"):
    ERRORS.labels(_kind)


def observe_batch(seconds: float, size: int) -> None:
    BATCH_DURATION.observe(seconds)
    BATCH_SIZE.observe(size)


def observe_completions(requests: Sequence[safeguard.Request], completions: Sequence[safeguard.Completion]) -> None:
    """Tokens and finish reasons of a batch's completions (aligned with its requests)."""
    for request, completion in zip(requests, completions, strict=True):
        # A server may invent finish reasons; labels stay a known few.
        reason = completion.finish_reason if completion.finish_reason in FINISH_REASONS else "other"
        COMPLETIONS.labels(reason).inc()
        if completion.finish_reason == "error":
            continue  # nothing was generated: no tokens to count
        PROMPT_TOKENS.observe(completion.prompt_tokens or request.prompt.total_tokens)
        written = completion.completion_tokens
        if written is None and completion.token_ids is not None:
            written = len(completion.token_ids)
        if written is not None:
            COMPLETION_TOKENS.observe(written)


def serve(port: int, addr: str = "127.0.0.1") -> tuple[WSGIServer, Thread]:
    """Serve this process's metrics on http://addr:port/metrics from a daemon thread; stop it with
    `server.shutdown()`."""
    server, thread = start_http_server(port, addr=addr)
    log.info("reasoner metrics on http://%s:%d/metrics", addr, server.server_address[1])
    return server, thread
