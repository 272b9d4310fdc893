"""What the API accepts: body size, JSON only, and per-token request rates (counted in Redis)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from redis.exceptions import RedisError

from api import json_input, redis_client
from api.errors import ApiError

log = logging.getLogger(__name__)

RATE_KEY = "api:rate:{client}:{window}"
WINDOW_S = 60


def check_rate(client: Any) -> dict[str, str]:
    """Count one request for `client` in the current minute; 429 once its limit is spent.

    A fixed one-minute window (INCR + EXPIRE, one round trip) is shared by every server process.
    Returns the X-RateLimit-* headers for the response.
    """
    now = time.time()
    window = int(now // WINDOW_S)
    key = RATE_KEY.format(client=client.pk, window=window)
    limit = client.rate_limit
    try:
        pipe = redis_client.connection().pipeline()
        pipe.incr(key)
        pipe.expire(key, 2 * WINDOW_S)
        count, _ = pipe.execute()
    except (RedisError, OSError) as exc:
        if settings.API_RATE_LIMIT_WITHOUT_REDIS == "closed":
            raise ApiError(503, "Requests cannot be counted against the rate limit right now; retry shortly",
                           code="rate_limit_unavailable", headers={"Retry-After": "5"}) from None
        log.warning("rate limit not counted for client %s: Redis is unavailable (%s)", client.pk, exc)
        return {"X-RateLimit-Limit": str(limit)}
    reset = max(1, int((window + 1) * WINDOW_S - now))
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, limit - count)),
        "X-RateLimit-Reset": str(reset),
    }
    if count > limit:
        raise ApiError(
            429, f"Rate limit of {limit} requests per minute reached; retry in {reset} s",
            code="rate_limit_exceeded", headers={**headers, "Retry-After": str(reset)},
        )
    return headers


def read_json(request: HttpRequest) -> Any:
    """The request body parsed as JSON: 415 for another content type, 413 past API_MAX_BODY_BYTES,
    400 for a body that is not JSON or holds what cannot be stored (api.json_input)."""
    if request.content_type != "application/json":
        raise ApiError(415, "Send the body as JSON with 'Content-Type: application/json'",
                       code="unsupported_media_type")
    limit = settings.API_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise ApiError(413, f"The body is {declared} bytes; the limit is {limit}", code="payload_too_large")
    # Read the stream ourselves (not request.body), so the limit is ours and not DATA_UPLOAD_MAX_MEMORY_SIZE.
    body = request.read(limit + 1)
    if len(body) > limit:
        raise ApiError(413, f"The body is over the limit of {limit} bytes", code="payload_too_large")
    if not body.strip():
        raise ApiError(400, "The body is empty; send a JSON object", code="invalid_json")
    return json_input.loads(body)
