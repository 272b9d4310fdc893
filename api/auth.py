"""Token authentication for the API: `Authorization: Bearer <token>`, looked up by its SHA-256 hash.

API views are exempt from CSRF (no cookies are involved) and from the console's login requirement;
`api_view` puts them behind a token and the client's rate limit instead.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from api.errors import ApiError
from api.limits import check_rate
from api.models import ApiClient

log = logging.getLogger(__name__)

TOKEN_START = "mc_"  # recognisable in logs and secret scanners
PREFIX_LENGTH = 11  # "mc_" and 8 characters: shown in the console to tell tokens apart
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is refreshed at most this often


def new_token() -> str:
    return TOKEN_START + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(request: HttpRequest) -> ApiClient:
    """The active client whose token the request carries; 401 otherwise."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Send your API token as 'Authorization: Bearer <token>'", code="missing_token",
                       headers={"WWW-Authenticate": 'Bearer realm="api"'})
    # A hash lookup: the stored value is not the secret, so comparing it leaks nothing useful.
    client = ApiClient.objects.active().filter(token_hash=hash_token(token.strip())).first()
    if client is None:
        raise ApiError(401, "The API token is not valid or has been revoked", code="invalid_token",
                       headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'})
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
    return client


def api_view(*methods: str, auth: bool = True) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A JSON API view: allowed methods (405 otherwise), token auth and rate limit (unless auth=False),
    and every ApiError answered as a JSON error. The client is `request.api_client`."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(405, f"{request.method} is not allowed here; use {' or '.join(methods)}",
                                   code="method_not_allowed", headers={"Allow": ", ".join(methods)})
                if auth:
                    request.api_client = authenticate(request)
                    limit_headers = check_rate(request.api_client)
                response = view(request, *args, **kwargs)
            except ApiError as exc:
                return exc.response()
            except Exception:
                # Whatever went wrong, the caller gets JSON with an id to quote; the traceback is logged
                # once, here (Django's own handler would answer HTML and log it again).
                request_id = uuid.uuid4().hex[:16]
                log.exception("API request %s failed: %s %s", request_id, request.method, request.path)
                failed = ApiError(500, f"The request failed on our side; quote request id {request_id}",
                                  code="internal_error", headers={"X-Request-Id": request_id}).response()
                failed._has_been_logged = True  # django.request would log the same failure again
                return failed
            if auth:
                for name, value in limit_headers.items():
                    response[name] = value
            return response

        return login_not_required(csrf_exempt(wrapped))

    return decorator
