"""One Redis client per process for the API's rate limits, schedule markers and job queues.

django_rq.get_connection builds a new client (and connection pool) on every call; on the request path
that would be a new TCP connection per request, so the API keeps one pooled client instead.
"""

from __future__ import annotations

import threading

import django_rq
import redis
from django.conf import settings
from rq import Queue

_lock = threading.Lock()
_client: tuple[str, redis.Redis] | None = None


def connection() -> redis.Redis:
    """The process's client for REDIS_URL (rebuilt if the setting changes, as in tests)."""
    global _client
    url = settings.REDIS_URL
    if _client is None or _client[0] != url:
        with _lock:
            if _client is None or _client[0] != url:
                _client = (url, redis.Redis.from_url(url))
    return _client[1]


def queue(name: str, *, immediate: bool = False) -> Queue:
    """The django_rq queue `name` on the shared connection. Jobs are enqueued when the surrounding
    transaction commits (RQ["COMMIT_MODE"]), or at once with `immediate` (for Redis-only state)."""
    return django_rq.get_queue(name, connection=connection(), commit_mode="auto" if immediate else None)
