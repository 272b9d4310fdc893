"""An external first pass: any OpenAI-moderation-compatible endpoint (POST <url> with {"model", "input":
[texts]}, answering {"results": [{"category_scores": {name: score}}, ...]}) scores a policy's items in
place of the built-in model.

One request carries a whole batch of texts. Each text's score is the highest score among the endpoint
categories the policy maps (`category_map`: endpoint category -> the policy's category code), and the
policy code of that category comes with it. Anything short of a full, well-formed answer raises
ScoringFailed with its `kind`, for the whole request: the caller sends those texts to the reasoner. A
failure is never read as a low score.

A circuit breaker keeps a dead endpoint from adding its timeout to every intake request: after a
connection error, a timeout, a 429 or a 5xx the endpoint is skipped (ScoringFailed "circuit_open", at
once) for 1 s, doubling with each failed probe up to 30 s (the reasoner pool's back-off,
`safeguard.engines.endpoints`); the first request after that is the one probe (concurrent callers keep
skipping while it runs), and any answer closes the breaker again. Requests that were in flight when the
endpoint was marked down do not lengthen the back-off. The state is per process.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from safeguard.engines.endpoints import DOWN_S, MAX_DOWN_S
from safeguard.engines.openai_engine import post_json, run_coroutine

# Why a request gave no scores; "circuit_open": not sent, the endpoint failed recently; "error": the
# request could not be made at all (an invalid URL, a library error).
FAILURE_KINDS = ("connect", "timeout", "http_status", "malformed", "missing_score", "count", "circuit_open",
                 "error")
_SNIPPET = 200


class ScoringFailed(Exception):
    """The endpoint gave no usable scores for a request; `kind` is one of FAILURE_KINDS."""

    def __init__(self, kind: str, message: str, *, down: bool = False, detail: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.down = down  # the endpoint itself failed (opens the breaker)
        # The start of an error body, for the operators' log only: it may echo the texts sent, so it is
        # kept out of the message, which is stored on routes and in the audit trail.
        self.detail = detail


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    url: str
    category_map: Mapping[str, str]
    model: str = ""
    api_key: str = ""
    timeout_s: float = 2.0


@dataclass(frozen=True, slots=True)
class Scored:
    score: float
    category: str  # the policy code mapped from the highest-scoring endpoint category


@dataclass
class Breaker:
    """Open after a failure for a back-off that doubles with each failed probe; see the module docstring."""

    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    down_until: float = 0.0
    probing: bool = False
    last_error: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def allow(self) -> bool:
        with self._lock:
            if not self.failures:
                return True
            if self.probing or self.clock() < self.down_until:
                return False
            self.probing = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self.failures, self.down_until, self.probing = 0, 0.0, False

    def failed(self, error: str) -> None:
        with self._lock:
            self.last_error = error
            now = self.clock()
            if now < self.down_until:
                return  # in flight when the endpoint was marked down: one outage, not one failure per request
            self.probing = False
            self.failures += 1
            self.down_until = now + min(DOWN_S * 2 ** (self.failures - 1), MAX_DOWN_S)

    def remaining_s(self) -> float:
        return max(self.down_until - self.clock(), 0.0)


def payload(config: EndpointConfig, texts: Sequence[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"input": list(texts)}
    if config.model:
        body["model"] = config.model
    return body


def read_scores(body: Any, category_map: Mapping[str, str], count: int) -> list[Scored]:
    """Each text's score from a moderation answer; ScoringFailed unless every text has every mapped score."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise ScoringFailed("malformed", "the answer has no results list")
    if len(results) != count:
        raise ScoringFailed("count", f"{len(results)} results for {count} inputs")
    scored = []
    for index, result in enumerate(results):
        scores = result.get("category_scores") if isinstance(result, dict) else None
        if not isinstance(scores, dict):
            raise ScoringFailed("malformed", f"results[{index}] has no category_scores object")
        best: Scored | None = None
        for name, code in category_map.items():
            value = scores.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ScoringFailed("missing_score", f"results[{index}].category_scores.{name} is {value!r}, "
                                                     "not a number")
            if not 0 <= value <= 1:
                raise ScoringFailed("malformed", f"results[{index}].category_scores.{name} is {value}, "
                                                 "outside 0..1")
            if best is None or value > best.score:
                best = Scored(float(value), code)
        assert best is not None  # the map is never empty (the console refuses an empty one)
        scored.append(best)
    return scored


class ModerationEndpoint:
    """One configured endpoint and its breaker; `score` is safe to call from several threads."""

    def __init__(self, config: EndpointConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not config.url.startswith(("http://", "https://")):
            raise ValueError(f"url {config.url!r} must start with http:// or https://")
        if not config.category_map:
            raise ValueError("an external first pass needs at least one mapped category")
        self.config = config
        self.breaker = Breaker(clock=clock)
        self.headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        # Built once: loading the CA bundle costs ~17 ms, which a client made per request would pay each time.
        self.tls = httpx.create_ssl_context()

    def score(self, texts: Sequence[str]) -> list[Scored]:
        if not texts:
            return []
        if not self.breaker.allow():
            raise ScoringFailed("circuit_open", f"not sent: the endpoint failed {self.breaker.remaining_s():.0f} s "
                                                f"ago or less ({self.breaker.last_error})")
        try:
            scored = self._request(texts)
        except ScoringFailed as exc:
            if exc.down:
                self.breaker.failed(str(exc))
            else:
                self.breaker.succeeded()  # it answered: reachable, just not usable
            raise
        self.breaker.succeeded()
        return scored

    def _request(self, texts: Sequence[str]) -> list[Scored]:
        timeout = self.config.timeout_s

        async def post() -> httpx.Response:
            async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False,
                                         verify=self.tls) as client:
                # httpx's timeout bounds each phase; this bounds the whole exchange.
                async with asyncio.timeout(timeout):
                    return await post_json(client, self.config.url, payload(self.config, texts), self.headers)

        try:
            response = run_coroutine(post)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ScoringFailed("timeout", f"timed out after {timeout:g} s", down=True) from exc
        except httpx.HTTPError as exc:
            raise ScoringFailed("connect", f"connection failed: {type(exc).__name__}: {exc}", down=True) from exc
        except Exception as exc:  # an odd URL or library error must not fail the intake request
            raise ScoringFailed("error", f"request failed: {exc!r}") from exc
        status = response.status_code
        if not 200 <= status < 300:
            snippet = response.text.strip().replace("\n", " ")[:_SNIPPET]
            raise ScoringFailed("http_status", f"HTTP {status}", down=status == 429 or status >= 500, detail=snippet)
        try:
            body = response.json()
        except ValueError as exc:
            raise ScoringFailed("malformed", "the answer is not JSON") from exc
        return read_scores(body, self.config.category_map, len(texts))
