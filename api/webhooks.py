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
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from api.metrics import DELIVERY_FAILURES

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


def destination_refusal(url: str, allow_setting: str = "WEBHOOK_ALLOWED_HOSTS") -> str:
    """Why the console must not send to `url` ("" when it may): a host that resolves to a loopback,
    private, link-local or otherwise non-public address, unless the setting `allow_setting` names it
    (WEBHOOK_ALLOWED_HOSTS for webhooks, FIRST_PASS_ALLOWED_HOSTS for external first passes).

    Checked when a URL is saved and again before each delivery (the name may point elsewhere since). A
    name that re-resolves between this check and the connection is not caught; an egress firewall is
    the complete answer, this check keeps a console admin from reaching the console's own services.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        return "the URL has no host"
    if host in {h.lower() for h in getattr(settings, allow_setting)}:
        return ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError):
        return ""  # a name that does not resolve reaches nothing; the delivery itself reports the failure
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            return (f"the host {host} resolves to {address}, a loopback, private or link-local address "
                    f"(allow it with {allow_setting})")
    return ""


def post(url: str, payload: dict[str, Any], *, secret: str, delivery_id: str) -> PostResult:
    """POST one signed delivery; never raises for network trouble (the result says what happened)."""
    refusal = destination_refusal(url)
    if refusal:
        DELIVERY_FAILURES.labels("refused").inc()
        return PostResult(False, None, "", f"not sent: {refusal}"[:500])
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
        DELIVERY_FAILURES.labels("network").inc()
        return PostResult(False, None, "", f"{type(exc).__name__}: {exc}"[:500])
    ok = 200 <= response.status_code < 300
    if not ok:
        DELIVERY_FAILURES.labels("http_status").inc()
    return PostResult(ok, response.status_code, response.text[:500], "" if ok else f"HTTP {response.status_code}")
