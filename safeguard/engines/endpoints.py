"""Which of several OpenAI-compatible servers gets the next request.

A request goes to the server with the fewest requests of this engine in flight; among equals, the one
picked longest ago, so an idle pool is used round robin. A server that refuses the connection, times out
or answers 5xx is marked down: for 1 s after its first failure, doubling with each failed probe up to
30 s. While it is down the others take its share; the first request after the back-off is its probe, and
any answer from it brings it back. Requests already in flight when a server fails do not lengthen its
back-off: fifty requests lost at once are one failure, not fifty.

When every server is down a request still goes somewhere (the server whose back-off ends first): a pool
of one behaves like a single server, and a short outage of all of them is retried, not refused.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

DOWN_S = 1.0
MAX_DOWN_S = 30.0


def split_urls(value: str | Sequence[str]) -> tuple[str, ...]:
    """Base URLs from one string (separated by commas or whitespace) or a sequence of such strings."""
    parts = [value] if isinstance(value, str) else list(value)
    return tuple(url.rstrip("/") for part in parts for url in re.split(r"[\s,]+", part) if url)


@dataclass(eq=False)
class Endpoint:
    """One server: its chat completions URL and what this process has seen of it."""

    base_url: str
    in_flight: int = 0
    served: int = 0  # requests it answered (any HTTP answer but 429 and 5xx)
    failures: int = 0  # failed probes in a row; 0 while it is up
    down_until: float = 0.0  # time.monotonic() value
    last_error: str = ""
    last_pick: int = 0

    @property
    def url(self) -> str:
        return self.base_url + "/chat/completions"


class EndpointPool:
    """The servers of one engine; `pick` and `release` are safe to call from several threads."""

    def __init__(self, base_urls: Sequence[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        if not base_urls:
            raise ValueError("an endpoint pool needs at least one base URL")
        self.endpoints = [Endpoint(url) for url in base_urls]
        self.clock = clock
        self._picks = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.endpoints)

    def pick(self) -> Endpoint:
        """The server for a request's first try (or its first after a back-off): the least busy one that
        is up, or, when every server is down, the one whose back-off ends first."""
        chosen = self._choose(())
        assert chosen is not None  # with nothing tried, a down server is chosen rather than none
        return chosen

    def pick_other(self, tried: Collection[Endpoint]) -> Endpoint | None:
        """The server for the next try of a request that failed on `tried`: the least busy one that is up
        and not in `tried`; None when there is none, so the request backs off before trying again."""
        return self._choose(tried)

    def _choose(self, tried: Collection[Endpoint]) -> Endpoint | None:
        with self._lock:
            now = self.clock()
            up = [e for e in self.endpoints if e not in tried and e.down_until <= now]
            if up:
                chosen = min(up, key=lambda e: (e.in_flight, e.last_pick))
            elif not tried:
                chosen = min(self.endpoints, key=lambda e: e.down_until)
            else:
                return None
            self._picks += 1
            chosen.last_pick = self._picks
            chosen.in_flight += 1
            return chosen

    def release(self, endpoint: Endpoint, *, error: str = "", down: bool = False) -> None:
        """A try on `endpoint` ended: answered (no `error`), or failed; `down` when the server is to blame
        (unreachable, timed out, 5xx), not when it asked to slow down (429) or the try was cancelled."""
        with self._lock:
            endpoint.in_flight -= 1
            now = self.clock()
            if not error:
                endpoint.served += 1
                if endpoint.failures:
                    log.info("safeguard server %s answers again", endpoint.base_url)
                endpoint.failures, endpoint.down_until = 0, 0.0
                return
            endpoint.last_error = error
            if not down or now < endpoint.down_until:
                return  # a 429, or a request that was in flight when the server was already marked down
            endpoint.failures += 1
            back_off = min(DOWN_S * 2 ** (endpoint.failures - 1), MAX_DOWN_S)
            endpoint.down_until = now + back_off
        log.warning("safeguard server %s is down for %.0f s: %s", endpoint.base_url, back_off, error)

    def describe_failures(self) -> str:
        return "; ".join(f"{e.base_url}: {e.last_error or 'no answer'}" for e in self.endpoints)
