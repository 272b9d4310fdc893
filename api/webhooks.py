"""Webhooks: the one module that makes outbound HTTP requests to platforms.

Every delivery is a JSON POST signed with the client's webhook secret:

    X-Webhook-Id:        whd_<delivery id>   (the same on every retry: receivers deduplicate on it)
    X-Webhook-Timestamp: <unix seconds>
    X-Webhook-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + raw body, keyed by the secret>

A receiver recomputes the HMAC over the raw body it received and compares in constant time (`verify`
below does exactly that), and refuses old timestamps to stop replays. Any 2xx answer is success;
anything else (including redirects, which are not followed) is retried with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

USER_AGENT = "moderation-console-webhooks/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str | int, body: bytes, signature: str, *, tolerance_s: float = 300,
           now: float | None = None) -> bool:
    """Whether `signature` is ours for this body and timestamp, and the timestamp is recent."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - stamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), signature)


@dataclass(frozen=True, slots=True)
class PostResult:
    ok: bool
    status_code: int | None
    excerpt: str
    error: str


def post(url: str, payload: dict[str, Any], *, secret: str, delivery_id: str) -> PostResult:
    """POST one signed delivery; never raises for network trouble (the result says what happened)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": delivery_id,
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": sign(secret, timestamp, body),
    }
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_S,
                              follow_redirects=False)
    except httpx.HTTPError as exc:
        return PostResult(False, None, "", f"{type(exc).__name__}: {exc}"[:500])
    ok = 200 <= response.status_code < 300
    return PostResult(ok, response.status_code, response.text[:500], "" if ok else f"HTTP {response.status_code}")
