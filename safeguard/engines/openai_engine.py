"""gpt-oss-safeguard behind any OpenAI-compatible chat completions server.

Works with ``vllm serve``, Ollama and hosted endpoints. The policy goes in the
system message (these servers render it as harmony's developer instructions),
the item in the user message, and the server splits the answer into
``content`` (final channel) and ``reasoning_content`` / ``reasoning`` (analysis).

Requests run concurrently on an asyncio loop (at most `concurrency` in flight,
over all servers together), each with its own timeout and retries with
exponential back-off and jitter on connection errors, timeouts, 429 and 5xx.

`base_url` may name several servers (see `endpoints`): each request goes to the
least busy one that is up, and a try that fails moves at once to another server
that is up; the back-off applies only once no such server is left.

Whatever goes wrong with one item, including a malformed body, comes back as
that item's error Completion; nothing here ever turns a failure into an answer.
When no request of a batch got an answer because every server failed it
(unreachable, timed out, 5xx), the batch raises EngineError instead, so the
caller sees one outage rather than many item errors.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import httpx

from safeguard.completion import Completion, Request
from safeguard.engines.base import EngineConfig, EngineError
from safeguard.engines.endpoints import Endpoint, EndpointPool
from safeguard.prompt import content_text

MAX_RETRY_AFTER_S = 60.0
_BODY_SNIPPET = 300


class _Retryable(Exception):
    """A try that may succeed later or elsewhere; `down` when the server itself failed (not a 429)."""

    def __init__(self, message: str, retry_after: float | None = None, *, down: bool = True) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.down = down


async def post_json(
    client: httpx.AsyncClient, url: str, payload: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """The single place this engine sends anything over the network."""
    return await client.post(url, json=payload, headers=headers)


def run_coroutine[T](factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # Called from async code (an ASGI view, a Channels consumer): asyncio.run would
    # refuse to nest, so the work gets a private loop on a helper thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return None


def _snippet(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:_BODY_SNIPPET]


class OpenAIEngine:
    """Chat completions over HTTP; see the module docstring."""

    def __init__(self, config: EngineConfig) -> None:
        base_urls = config.base_urls
        if not base_urls:
            raise ValueError("the openai backend needs base_url (e.g. http://localhost:8000/v1)")
        for base_url in base_urls:
            if not base_url.startswith(("http://", "https://")):
                raise ValueError(f"base_url {base_url!r} must start with http:// or https://")
        self.config = config
        self.name = config.model
        # One pool for the life of the engine, so a server marked down stays down across batches.
        self.pool = EndpointPool(base_urls)
        self.url = self.pool.endpoints[0].url
        self.headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}

    def payload(self, request: Request) -> dict[str, Any]:
        """The chat completions body for one request."""
        return {
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": request.policy.text},
                {"role": "user", "content": content_text(request.content)},
            ],
            "max_tokens": request.max_tokens or self.config.max_tokens,
            "reasoning_effort": request.policy.reasoning_effort,
            "temperature": self.config.temperature,
        }

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        if not requests:
            return []
        return run_coroutine(lambda: self._generate_all(requests))

    async def _generate_all(self, requests: Sequence[Request]) -> list[Completion]:
        concurrency = max(1, self.config.concurrency)
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        slots = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.config.timeout_s), limits=limits) as client:
            results = await asyncio.gather(*(self._one(client, slots, request) for request in requests))
        if all(unavailable for _, unavailable in results):
            servers = "the server" if len(self.pool) == 1 else f"all {len(self.pool)} servers"
            raise EngineError(f"{servers} failed every request of the batch: {self.pool.describe_failures()}")
        return [completion for completion, _ in results]

    async def _one(
        self, client: httpx.AsyncClient, slots: asyncio.Semaphore, request: Request
    ) -> tuple[Completion, bool]:
        """The request's completion, and whether it failed because no server could answer it."""
        started = time.perf_counter()
        unavailable = False
        async with slots:
            try:
                completion, unavailable = await self._with_retries(client, request)
            except Exception as exc:  # a bug or an odd library error must not sink the batch
                completion = self._error(request, f"unexpected error: {exc!r}")
        completion.latency_s = time.perf_counter() - started
        return completion, unavailable

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        # Exponential with "equal jitter": half fixed, half random, so many clients
        # that failed together do not come back together.
        delay = self.config.retry_backoff_s * (2 ** (retry - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)
        return max(delay, retry_after or 0.0)

    async def _with_retries(self, client: httpx.AsyncClient, request: Request) -> tuple[Completion, bool]:
        """Up to max_retries + (number of servers) tries. A failed try moves at once to a server that is
        up and has not failed this request since its last back-off; with none left, it backs off first.
        One server gives exactly the old max_retries + 1 tries; each added server adds one try, so the
        worst case grows by one timeout per server, not by a multiple."""
        payload = self.payload(request)
        tries = max(0, self.config.max_retries) + len(self.pool)
        last: _Retryable | None = None
        tried: list[Endpoint] = []
        backoffs = 0
        for _ in range(tries):
            endpoint = self.pool.pick_other(tried) if tried else None
            if tried and endpoint is None:
                backoffs += 1
                await asyncio.sleep(self._backoff(backoffs, last.retry_after if last else None))
                tried = []
            endpoint = endpoint or self.pool.pick()
            tried.append(endpoint)
            error, down = "not answered", False  # what a cancellation or a bug here leaves
            try:
                completion = await self._attempt(client, endpoint, request, payload)
                error = ""
                return completion, False
            except _Retryable as exc:
                error, down = str(exc), exc.down
                where = f"{endpoint.base_url}: " if len(self.pool) > 1 else ""
                last = _Retryable(f"{where}{exc}", exc.retry_after, down=exc.down)
            finally:
                self.pool.release(endpoint, error=error, down=down)
        return self._error(request, f"gave up after {tries} attempts: {last}"), last.down if last else True

    async def _attempt(
        self, client: httpx.AsyncClient, endpoint: Endpoint, request: Request, payload: dict[str, Any]
    ) -> Completion:
        try:
            # httpx's timeout bounds each phase; this bounds the whole exchange.
            async with asyncio.timeout(self.config.timeout_s):
                response = await post_json(client, endpoint.url, payload, self.headers)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise _Retryable(f"timed out after {self.config.timeout_s}s") from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise _Retryable(f"connection failed: {exc!r}") from exc
        except httpx.HTTPError as exc:
            return self._error(request, f"request failed: {exc!r}")
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}: {_snippet(response)}", _retry_after(response), down=status != 429)
        if status >= 400:
            return self._error(request, f"HTTP {status}: {_snippet(response)}")
        return self._read(request, response)

    def _error(self, request: Request, message: str) -> Completion:
        return Completion(key=request.key, finish_reason="error", error=message, model=self.name)

    def _read(self, request: Request, response: httpx.Response) -> Completion:
        try:
            body = response.json()
        except ValueError:
            return self._error(request, f"malformed response: body is not JSON: {_snippet(response)}")
        if not isinstance(body, dict):
            return self._error(request, "malformed response: body is not a JSON object")
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            detail = body.get("error") or "no choices"
            return self._error(request, f"malformed response: {detail}")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            return self._error(request, "malformed response: the choice has no message")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            return self._error(request, "malformed response: message content is not text")
        reasoning = message.get("reasoning_content")
        if not isinstance(reasoning, str):
            reasoning = message.get("reasoning")
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        model = body.get("model")
        return Completion(
            key=request.key,
            text=content,
            reasoning=reasoning if isinstance(reasoning, str) else None,
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
            completion_tokens=_int_or_none(usage.get("completion_tokens")),
            model=model if isinstance(model, str) and model else self.name,
        )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
