"""Choosing a server for each request, and keeping away from one that failed, on a clock the test turns."""

from __future__ import annotations

import pytest

from safeguard.engines.endpoints import MAX_DOWN_S, EndpointPool, split_urls


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def pool_of(count: int, clock: Clock) -> EndpointPool:
    return EndpointPool([f"http://gpu-{i}:8000/v1" for i in range(1, count + 1)], clock=clock)


def names(endpoints) -> list[str]:
    return [e.base_url.split("//")[1].split(":")[0] if e else None for e in endpoints]


def test_it_splits_base_urls_on_commas_and_whitespace() -> None:
    assert split_urls("http://a:8000/v1") == ("http://a:8000/v1",)
    assert split_urls(" http://a:8000/v1/, http://b:8000/v1\n http://c/v1 ,,") == (
        "http://a:8000/v1",
        "http://b:8000/v1",
        "http://c/v1",
    )
    assert split_urls(["http://a/v1", "http://b/v1 http://c/v1"]) == ("http://a/v1", "http://b/v1", "http://c/v1")
    assert split_urls("  ") == ()


def test_it_refuses_an_empty_pool() -> None:
    with pytest.raises(ValueError, match="at least one"):
        EndpointPool([])


def test_it_picks_the_least_busy_server_and_round_robin_among_equals(clock) -> None:
    pool = pool_of(3, clock)

    first = [pool.pick() for _ in range(4)]
    assert names(first) == ["gpu-1", "gpu-2", "gpu-3", "gpu-1"]

    pool.release(first[1])  # gpu-2 answered: it now holds the fewest
    assert names([pool.pick()]) == ["gpu-2"]
    assert [e.in_flight for e in pool.endpoints] == [2, 1, 1]


def test_a_failed_server_is_skipped_until_its_back_off_ends(clock) -> None:
    pool = pool_of(2, clock)
    gpu1 = pool.pick()
    pool.release(gpu1, error="connection failed", down=True)

    assert names([pool.pick(), pool.pick()]) == ["gpu-2", "gpu-2"]

    clock.now += 1.0  # the first back-off is 1 s; the next request probes it
    assert pool.pick() is gpu1


def test_each_failed_probe_doubles_the_back_off_and_an_answer_ends_it(clock) -> None:
    pool = pool_of(2, clock)
    gpu1, gpu2 = pool.endpoints
    backoffs = []
    for _ in range(7):
        assert pool.pick_other([gpu2]) is gpu1  # a request that already failed on gpu-2 probes gpu-1
        pool.release(gpu1, error="HTTP 502", down=True)
        backoffs.append(gpu1.down_until - clock.now)
        clock.now = gpu1.down_until
    assert backoffs == [1, 2, 4, 8, 16, MAX_DOWN_S, MAX_DOWN_S]

    assert pool.pick_other([gpu2]) is gpu1
    pool.release(gpu1)
    assert (gpu1.failures, gpu1.down_until, gpu1.served, gpu1.in_flight) == (0, 0.0, 1, 0)


def test_requests_lost_together_count_as_one_failure(clock) -> None:
    pool = pool_of(2, clock)
    held = [pool.pick() for _ in range(6)]
    gpu1 = pool.endpoints[0]

    for endpoint in held:
        if endpoint is gpu1:
            pool.release(endpoint, error="connection reset", down=True)

    assert (gpu1.failures, gpu1.down_until, gpu1.in_flight) == (1, clock.now + 1, 0)


def test_a_server_that_asks_to_slow_down_is_not_marked_down(clock) -> None:
    pool = pool_of(2, clock)
    gpu1 = pool.pick()
    pool.release(gpu1, error="HTTP 429", down=False)

    assert gpu1.down_until == 0.0
    assert gpu1.last_error == "HTTP 429"
    # The request itself moves on to the other server.
    assert names([pool.pick_other([gpu1])]) == ["gpu-2"]


def test_with_every_server_down_a_first_try_probes_the_one_back_soonest_and_a_retry_backs_off(clock) -> None:
    pool = pool_of(2, clock)
    gpu1, gpu2 = pool.endpoints
    pool.release(pool.pick(), error="HTTP 500", down=True)  # gpu-1 down until now + 1
    clock.now += 0.5
    pool.release(pool.pick(), error="HTTP 500", down=True)  # gpu-2 down until now + 1 (later)

    assert gpu2.down_until > gpu1.down_until > clock.now
    assert pool.pick() is gpu1
    assert pool.pick_other([gpu1]) is None
    assert "gpu-1:8000/v1: HTTP 500; http://gpu-2:8000/v1: HTTP 500" in pool.describe_failures()
