"""The external first pass's client: scores read from a real local server, and its circuit breaker,
driven by a fake clock so no test waits for a back-off."""

from __future__ import annotations

from typing import Any

import pytest

from safeguard.moderation_endpoint import Breaker, EndpointConfig, ModerationEndpoint, ScoringFailed, read_scores
from tests.safeguard.http_server import FakeServer, Reply


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _good(body: dict[str, Any]) -> Reply:
    return Reply(body={"results": [{"category_scores": {"spam": 0.25 if "buy" in t else 0.0, "scam": 0.75}}
                                   for t in body["input"]]})


def _endpoint(server: FakeServer, clock: Clock) -> ModerationEndpoint:
    config = EndpointConfig(url=server.base_url + "/moderations", category_map={"spam": "SP2", "scam": "SP3"},
                            timeout_s=1.0)
    return ModerationEndpoint(config, clock=clock)


@pytest.fixture
def failing_then_good():
    """A server that answers 500 to its first two requests, then good scores."""
    server = FakeServer(lambda body, n: Reply(status=500, body={"error": "down"}) if n <= 2 else _good(body)).start()
    yield server
    server.stop()


def test_the_score_is_the_highest_mapped_category_with_its_code() -> None:
    server = FakeServer(lambda body, n: _good(body)).start()
    try:
        scored = _endpoint(server, Clock()).score(["buy now", "hello"])
    finally:
        server.stop()
    assert [(s.score, s.category) for s in scored] == [(0.75, "SP3"), (0.75, "SP3")]
    assert server.bodies == [{"input": ["buy now", "hello"]}]  # no model configured: none sent


def test_a_failing_server_is_skipped_until_its_back_off_ends_then_probed(failing_then_good) -> None:
    clock = Clock()
    endpoint = _endpoint(failing_then_good, clock)
    with pytest.raises(ScoringFailed) as failed:
        endpoint.score(["hello"])
    assert failed.value.kind == "http_status"
    with pytest.raises(ScoringFailed) as skipped:
        endpoint.score(["hello"])
    assert skipped.value.kind == "circuit_open"
    assert len(failing_then_good.bodies) == 1

    clock.now += 1.01  # the first back-off (1 s) is over: one probe, which fails again
    with pytest.raises(ScoringFailed):
        endpoint.score(["hello"])
    assert len(failing_then_good.bodies) == 2
    clock.now += 1.5  # the second back-off is 2 s
    with pytest.raises(ScoringFailed) as skipped:
        endpoint.score(["hello"])
    assert skipped.value.kind == "circuit_open"
    clock.now += 0.6
    assert [s.score for s in endpoint.score(["hello"])] == [0.75]
    assert [s.score for s in endpoint.score(["buy"])] == [0.75]  # closed again: no back-off left
    assert len(failing_then_good.bodies) == 4


def test_an_answer_it_cannot_use_does_not_open_the_breaker() -> None:
    server = FakeServer(lambda body, n: Reply(body={"results": []})).start()
    try:
        endpoint = _endpoint(server, Clock())
        for _ in range(2):
            with pytest.raises(ScoringFailed) as failed:
                endpoint.score(["hello"])
            assert failed.value.kind == "count"
    finally:
        server.stop()
    assert len(server.bodies) == 2  # reachable and quick: each batch still asks


def test_only_one_caller_probes_at_a_time() -> None:
    clock = Clock()
    breaker = Breaker(clock=clock)
    breaker.failed("timed out")
    assert breaker.allow() is False
    clock.now += 1.01
    assert (breaker.allow(), breaker.allow()) == (True, False)
    breaker.succeeded()
    assert breaker.allow() is True


@pytest.mark.parametrize(("value", "kind"), [(True, "missing_score"), ("0.5", "missing_score"),
                                             (float("inf"), "missing_score"), (-0.1, "malformed")])
def test_a_score_must_be_a_number_between_0_and_1(value: Any, kind: str) -> None:
    with pytest.raises(ScoringFailed) as failed:
        read_scores({"results": [{"category_scores": {"spam": value}}]}, {"spam": "violation"}, 1)
    assert failed.value.kind == kind


def test_requests_that_fail_together_are_one_failure() -> None:
    clock = Clock()
    breaker = Breaker(clock=clock)
    for _ in range(5):  # five requests in flight when the endpoint went down
        breaker.failed("timed out")
    assert breaker.remaining_s() == 1.0  # the first back-off, not the fifth
    clock.now += 1.01
    assert breaker.allow() is True
    breaker.failed("timed out again")  # the probe failed: the back-off doubles
    assert breaker.remaining_s() == 2.0
