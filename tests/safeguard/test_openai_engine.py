"""The HTTP engine against a real OpenAI-compatible server on 127.0.0.1 whose answers each test scripts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from safeguard import Completion, EngineConfig, EngineError, load_engine, parse_completion
from safeguard.engines.openai_engine import OpenAIEngine
from safeguard.prompt import content_text
from tests.safeguard.helpers import BINARY_POLICY, SPAM_POLICY, make_request
from tests.safeguard.http_server import FakeServer, Reply, unreachable_url


def chat_reply(content: str | None, reasoning: str | None = None, finish_reason: str = "stop", **extra: Any) -> Reply:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-oss-safeguard-20b",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
    }
    body.update(extra)
    return Reply(body=body)


def engine_for(*servers: FakeServer | str, **config: Any) -> OpenAIEngine:
    """An engine for the given servers (or base URLs), with short timeouts and back-offs."""
    settings: dict[str, Any] = {"timeout_s": 2.0, "max_retries": 2, "retry_backoff_s": 0.01}
    settings.update(config)
    urls = [s if isinstance(s, str) else s.base_url for s in servers]
    return OpenAIEngine(EngineConfig(backend="openai", base_url=",".join(urls), **settings))


def _index(body: dict[str, Any]) -> int:
    return int(body["messages"][1]["content"].split()[-1])


def test_it_posts_the_policy_and_content_and_reads_content_and_reasoning(serve) -> None:
    server = serve(lambda body, n: chat_reply('{"violation": 1, "policy_category": "SP2"}', "Promotional spam."))
    engine = engine_for(server, api_key="sk-test", max_tokens=999)
    request = make_request("buy now!!", SPAM_POLICY, max_tokens=512)

    [completion] = engine.generate([request])

    body = server.bodies[0]
    assert body["model"] == "openai/gpt-oss-safeguard-20b"
    assert body["messages"] == [
        {"role": "system", "content": SPAM_POLICY.text},
        {"role": "user", "content": content_text(request.content)},
    ]
    assert body["max_tokens"] == 512
    assert body["reasoning_effort"] == "low"
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert completion == Completion(
        key="item-1",
        text='{"violation": 1, "policy_category": "SP2"}',
        reasoning="Promotional spam.",
        finish_reason="stop",
        prompt_tokens=120,
        completion_tokens=30,
        model="gpt-oss-safeguard-20b",
        latency_s=completion.latency_s,
    )
    assert completion.latency_s > 0
    verdict = parse_completion(completion, SPAM_POLICY)
    assert (verdict.status, verdict.label, verdict.reasoning) == ("done", "SP2", "Promotional spam.")


def test_it_reads_the_reasoning_field_some_servers_use(serve) -> None:
    reply = chat_reply("0")
    reply.body["choices"][0]["message"]["reasoning"] = "Ollama-style reasoning."
    server = serve(lambda body, n: reply)

    [completion] = engine_for(server).generate([make_request("hi", BINARY_POLICY)])

    assert completion.reasoning == "Ollama-style reasoning."
    assert server.headers[0].get("Authorization") is None


def test_it_keeps_many_requests_in_flight_and_returns_them_in_order(serve) -> None:
    # Later requests answer sooner, so completion order differs from request order.
    def behaviour(body: dict[str, Any], n: int) -> Reply:
        index = int(body["messages"][1]["content"].split()[-1])
        return Reply(body=chat_reply(f"{index % 2}").body, delay_s=0.25 - index * 0.02)

    server = serve(behaviour)
    engine = engine_for(server, concurrency=4)
    requests = [make_request(f"item {i}", BINARY_POLICY, key=f"k{i}") for i in range(8)]

    started = time.perf_counter()
    completions = engine.generate(requests)
    elapsed = time.perf_counter() - started

    assert [c.key for c in completions] == [f"k{i}" for i in range(8)]
    assert [c.text for c in completions] == [str(i % 2) for i in range(8)]
    assert server.max_in_flight == 4
    assert elapsed < 1.2  # one at a time would take about 1.4 s


def test_it_never_exceeds_the_concurrency_limit(serve) -> None:
    server = serve(lambda body, n: Reply(body=chat_reply("0").body, delay_s=0.05))

    engine_for(server, concurrency=2).generate([make_request(f"item {i}", BINARY_POLICY) for i in range(6)])

    assert server.max_in_flight == 2


def test_it_times_out_and_reports_an_error_after_retries(serve) -> None:
    def behaviour(body: dict[str, Any], n: int) -> Reply:
        slow = "slow" in body["messages"][1]["content"]
        return Reply(body=chat_reply("0").body, delay_s=2.0 if slow else 0.0)

    server = serve(behaviour)
    engine = engine_for(server, timeout_s=0.2, max_retries=1)

    started = time.perf_counter()
    slow, fast = engine.generate([make_request("slow", BINARY_POLICY, key="s"), make_request("fast", BINARY_POLICY)])

    assert time.perf_counter() - started < 1.5
    assert slow.finish_reason == "error"
    assert "timed out" in slow.error
    assert "2 attempts" in slow.error
    assert len(server.bodies) == 3
    assert parse_completion(slow, BINARY_POLICY).status == "failed"
    assert fast.text == "0"


def test_it_fails_the_batch_when_every_request_timed_out(serve) -> None:
    server = serve(lambda body, n: Reply(body=chat_reply("0").body, delay_s=2.0))

    with pytest.raises(EngineError, match="the server failed every request of the batch.*timed out after 0.2s"):
        engine_for(server, timeout_s=0.2, max_retries=1).generate([make_request("x", BINARY_POLICY)])

    assert len(server.bodies) == 2


def test_it_retries_server_errors_and_then_succeeds(serve) -> None:
    def behaviour(body: dict[str, Any], n: int) -> Reply:
        if n == 1:
            return Reply(status=503, body={"error": "warming up"})
        if n == 2:
            return Reply(status=429, body={"error": "slow down"}, headers={"Retry-After": "0"})
        return chat_reply("1", "spam")

    server = serve(behaviour)

    [completion] = engine_for(server, max_retries=3).generate([make_request("x", BINARY_POLICY)])

    assert (completion.finish_reason, completion.text) == ("stop", "1")
    assert len(server.bodies) == 3


def test_it_gives_up_on_an_item_the_server_keeps_failing(serve) -> None:
    def behaviour(body: dict[str, Any], n: int) -> Reply:
        if "poison" in body["messages"][1]["content"]:
            return Reply(status=500, body={"error": "boom"})
        return chat_reply("1")

    server = serve(behaviour)

    completions = engine_for(server, max_retries=2).generate(
        [make_request("poison", BINARY_POLICY, key="a"), make_request("fine", BINARY_POLICY, key="b")]
    )

    assert [c.finish_reason for c in completions] == ["error", "stop"]
    assert "gave up after 3 attempts: HTTP 500" in completions[0].error
    assert len(server.bodies) == 4
    assert [parse_completion(c, BINARY_POLICY).violation for c in completions] == [None, True]


def test_it_fails_the_batch_when_the_server_fails_every_request(serve) -> None:
    server = serve(lambda body, n: Reply(status=500, body={"error": "boom"}))

    with pytest.raises(EngineError, match="the server failed every request of the batch: .*HTTP 500"):
        engine_for(server, max_retries=2).generate(
            [make_request("a", BINARY_POLICY, key="a"), make_request("b", BINARY_POLICY, key="b")]
        )

    assert len(server.bodies) == 6


def test_a_server_that_asks_to_slow_down_fails_items_not_the_batch(serve) -> None:
    server = serve(lambda body, n: Reply(status=429, body={"error": "slow down"}, headers={"Retry-After": "0"}))

    engine = engine_for(server, max_retries=1)
    [completion] = engine.generate([make_request("x", BINARY_POLICY)])

    assert "gave up after 2 attempts: HTTP 429" in completion.error
    assert engine.pool.endpoints[0].down_until == 0.0


def test_it_does_not_retry_a_client_error(serve) -> None:
    server = serve(lambda body, n: Reply(status=400, body={"error": "prompt too long"}))

    [completion] = engine_for(server).generate([make_request("x", BINARY_POLICY)])

    assert completion.finish_reason == "error"
    assert "HTTP 400" in completion.error and "prompt too long" in completion.error
    assert len(server.bodies) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>Bad gateway page</html>", "not JSON"),
        ({"object": "chat.completion"}, "no choices"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"index": 0}]}, "no message"),
        ({"choices": [{"message": {"content": 7}}]}, "not text"),
        ([1, 2, 3], "not a JSON object"),
    ],
)
def test_it_turns_a_malformed_body_into_an_item_error(serve, body: Any, message: str) -> None:
    server = serve(lambda request_body, n: Reply(body=body))

    completions = engine_for(server).generate(
        [make_request("x", BINARY_POLICY, key="x"), make_request("y", BINARY_POLICY, key="y")]
    )

    assert [c.finish_reason for c in completions] == ["error", "error"]
    assert message in completions[0].error
    assert [parse_completion(c, BINARY_POLICY).status for c in completions] == ["failed", "failed"]


def test_it_passes_a_length_finish_through(serve) -> None:
    server = serve(lambda body, n: chat_reply(None, "Thinking and thinking", finish_reason="length"))

    [completion] = engine_for(server).generate([make_request("x", BINARY_POLICY)])

    assert completion.finish_reason == "length"
    verdict = parse_completion(completion, BINARY_POLICY)
    assert (verdict.status, verdict.reasoning) == ("truncated", "Thinking and thinking")


def test_it_fails_the_batch_when_the_server_is_unreachable() -> None:
    engine = engine_for(unreachable_url(), max_retries=1)

    with pytest.raises(EngineError, match="the server failed every request of the batch: .*connection failed"):
        engine.generate([make_request("x", BINARY_POLICY), make_request("y", BINARY_POLICY, key="y")])


def test_it_works_when_called_from_inside_an_event_loop(serve) -> None:
    server = serve(lambda body, n: chat_reply("1"))
    engine = engine_for(server)

    async def from_async_code() -> list[Completion]:
        return engine.generate([make_request("x", BINARY_POLICY)])

    [completion] = asyncio.run(from_async_code())

    assert completion.text == "1"


def test_it_is_built_by_load_engine_and_needs_a_base_url() -> None:
    engine = load_engine(EngineConfig(backend="openai", base_url="http://localhost:8000/v1/", model="m"))

    assert isinstance(engine, OpenAIEngine)
    assert engine.url == "http://localhost:8000/v1/chat/completions"
    assert engine.name == "m"
    with pytest.raises(ValueError, match="base_url"):
        load_engine(EngineConfig(backend="openai"))
    with pytest.raises(ValueError, match="'gpu-2:8000/v1' must start with http"):
        load_engine(EngineConfig(backend="openai", base_url="http://gpu-1:8000/v1,gpu-2:8000/v1"))


# several servers


def test_it_takes_several_base_urls_as_a_list_or_one_string() -> None:
    listed = load_engine(EngineConfig(backend="openai", base_url=["http://gpu-1:8000/v1", "http://gpu-2:8000/v1/"]))
    spelled = load_engine(EngineConfig(backend="openai", base_url=" http://gpu-1:8000/v1,\thttp://gpu-2:8000/v1/ "))

    for engine in (listed, spelled):
        assert isinstance(engine, OpenAIEngine)
        assert [e.url for e in engine.pool.endpoints] == [
            "http://gpu-1:8000/v1/chat/completions",
            "http://gpu-2:8000/v1/chat/completions",
        ]


def test_it_spreads_a_batch_over_the_servers(serve) -> None:
    def behaviour(body: dict[str, Any], n: int) -> Reply:
        return Reply(body=chat_reply(f"{_index(body) % 2}").body, delay_s=0.1)

    first, second = serve(behaviour), serve(behaviour)
    engine = engine_for(first, second, concurrency=4)

    completions = engine.generate([make_request(f"item {i}", BINARY_POLICY, key=f"k{i}") for i in range(8)])

    assert [c.text for c in completions] == [str(i % 2) for i in range(8)]
    # The least busy server gets the next request: each holds half the slots and serves half the batch.
    assert (len(first.bodies), len(second.bodies)) == (4, 4)
    assert (first.max_in_flight, second.max_in_flight) == (2, 2)
    assert sorted(_index(b) for b in first.bodies + second.bodies) == list(range(8))
    assert [e.served for e in engine.pool.endpoints] == [4, 4]


def test_an_unreachable_server_leaves_the_batch_to_the_others(serve) -> None:
    server = serve(lambda body, n: Reply(body=chat_reply("1").body, delay_s=0.02))
    engine = engine_for(unreachable_url(), server, concurrency=4)

    completions = engine.generate([make_request(f"item {i}", BINARY_POLICY, key=f"k{i}") for i in range(8)])

    assert [c.finish_reason for c in completions] == ["stop"] * 8
    assert len(server.bodies) == 8
    down, up = engine.pool.endpoints
    assert down.down_until > time.monotonic() and "connection failed" in down.last_error
    assert (down.served, up.served) == (0, 8)


def test_a_server_answering_5xx_is_left_alone_while_it_is_down(serve) -> None:
    failing = serve(lambda body, n: Reply(status=503, body={"object": "error", "message": "loading", "code": 503}))
    healthy = serve(lambda body, n: Reply(body=chat_reply("0").body, delay_s=0.02))
    engine = engine_for(failing, healthy, concurrency=4)

    first = engine.generate([make_request(f"item {i}", BINARY_POLICY, key=f"k{i}") for i in range(8)])
    second = engine.generate([make_request(f"again {i}", BINARY_POLICY, key=f"a{i}") for i in range(4)])

    assert [c.text for c in first + second] == ["0"] * 12
    # Only the two requests sent before its first 503 came back; both moved on at once, without a back-off,
    # and the next batch (within the server's back-off) sent it nothing.
    assert len(failing.bodies) == 2
    assert len(healthy.bodies) == 12


def test_it_fails_the_batch_when_every_server_is_down() -> None:
    urls = [unreachable_url(), unreachable_url()]
    engine = engine_for(*urls, max_retries=1)

    with pytest.raises(EngineError, match="all 2 servers failed every request of the batch") as failure:
        engine.generate([make_request(f"item {i}", BINARY_POLICY, key=f"k{i}") for i in range(3)])

    assert all(f"{url}: connection failed" in str(failure.value) for url in urls)


def test_an_item_that_failed_on_every_server_names_the_last_one(serve) -> None:
    def behaviour(body: dict[str, Any], n: int) -> Reply:
        if "poison" in body["messages"][1]["content"]:
            return Reply(status=500, body={"error": "boom"})
        return chat_reply("1")

    first, second = serve(behaviour), serve(behaviour)

    poison, fine = engine_for(first, second, max_retries=0, concurrency=1).generate(
        [make_request("poison", BINARY_POLICY, key="p"), make_request("fine", BINARY_POLICY)]
    )

    assert fine.text == "1"
    assert poison.finish_reason == "error"
    # No retries: one try on each server.
    assert f"gave up after 2 attempts: {second.base_url}: HTTP 500" in poison.error
    assert (len(first.bodies), len(second.bodies)) == (2, 1)


def test_each_extra_server_adds_one_try_not_a_round_of_retries(serve) -> None:
    failing = [serve(lambda body, n: Reply(status=502, body={"error": "bad gateway"})) for _ in range(3)]

    with pytest.raises(EngineError, match="all 3 servers failed"):
        engine_for(*failing, max_retries=1, concurrency=1).generate([make_request("x", BINARY_POLICY)])

    # max_retries + 3 servers = 4 tries: each server once, then (all down) a probe of the first to recover.
    assert [len(s.bodies) for s in failing] == [2, 1, 1]
