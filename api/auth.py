"""Token authentication for the API: `Authorization: Bearer <token>`, looked up by its SHA-256 hash.

API views are exempt from CSRF (no cookies are involved) and from the console's login requirement;
`api_view` puts them behind a token, the one scope the view needs (its `scope=` argument is the only
place a view's scope is set; `tests/api/test_scopes.py` walks api/urls.py to keep every view covered)
and the client's rate limit instead.

Refusals, in order: no token or an unknown or revoked one (401 invalid_token), an expired one (401
token_expired, saying when), a token without the view's scope (403 insufficient_scope, naming it),
then the rate limit (429). Which policies a client may name is checked where they are read
(api.inputs.PolicyResolver).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from api.errors import ApiError
from api.item_states import iso
from api.limits import check_rate
from api.models import ApiClient, Scope
from console.request_ids import current_request_id, new_request_id

log = logging.getLogger(__name__)

TOKEN_START = "mc_"  # recognisable in logs and secret scanners
PREFIX_LENGTH = 11  # "mc_" and 8 characters: shown in the console to tell tokens apart
LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used_at is refreshed at most this often


def new_token() -> str:
    return TOKEN_START + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(request: HttpRequest) -> ApiClient:
    """The active, unexpired client whose token the request carries; 401 otherwise."""
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
    if client.is_expired(now):
        # The caller holds the real token, so saying that (and when) it expired tells them nothing new.
        raise ApiError(401, f"The API token expired at {iso(client.expires_at)}; ask an admin for a new one",
                       code="token_expired",
                       headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token", '
                                                    'error_description="The token expired"'})
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
    return client


def require_scope(client: ApiClient, scope: str) -> None:
    """403 naming `scope` unless the client's token holds it."""
    if not client.has_scope(scope):
        held = ", ".join(client.scopes) or "none"
        raise ApiError(403, f"This token lacks the '{scope}' scope this endpoint needs (it holds: {held}); "
                            "an admin can grant it", code="insufficient_scope",
                       headers={"WWW-Authenticate": f'Bearer realm="api", error="insufficient_scope", scope="{scope}"'})


def api_view(*methods: str, scope: str | None = None, auth: bool = True
             ) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A JSON API view: allowed methods (405 otherwise), token auth, the `scope` the token must hold and
    the rate limit (all three skipped with auth=False, for public views, which take no scope), and every
    ApiError answered as a JSON error. The client is `request.api_client`.

    The view is marked with `api_scope` and `api_auth`, so the URL walk in the tests can check them."""
    if auth and scope not in Scope.values:
        raise ValueError(f"an authenticated API view needs one scope of {Scope.values}, not {scope!r}")
    if not auth and scope is not None:
        raise ValueError("a public API view (auth=False) takes no scope")
    scope = str(scope) if scope is not None else None  # a plain string in messages and on the view

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(405, f"{request.method} is not allowed here; use {' or '.join(methods)}",
                                   code="method_not_allowed", headers={"Allow": ", ".join(methods)})
                if auth:
                    request.api_client = authenticate(request)
                    require_scope(request.api_client, scope)
                    limit_headers = check_rate(request.api_client)
                response = view(request, *args, **kwargs)
            except ApiError as exc:
                return exc.response()
            except Exception:
                # Whatever went wrong, the caller gets JSON with an id to quote; the traceback is logged
                # once, here (Django's own handler would answer HTML and log it again).
                # The id the request-id middleware gave this request (and put on its log lines).
                request_id = current_request_id() or new_request_id()
                log.exception("API request %s failed: %s %s", request_id, request.method, request.path)
                failed = ApiError(500, f"The request failed on our side; quote request id {request_id}",
                                  code="internal_error", headers={"X-Request-Id": request_id}).response()
                failed._has_been_logged = True  # django.request would log the same failure again
                return failed
            if auth:
                for name, value in limit_headers.items():
                    response[name] = value
            return response

        wrapped.api_scope = scope  # type: ignore[attr-defined]
        wrapped.api_auth = auth  # type: ignore[attr-defined]
        return login_not_required(csrf_exempt(wrapped))

    return decorator
