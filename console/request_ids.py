"""Request ids: every web request gets one, echoed in its `X-Request-Id` header and put on every log
record written while it runs (`RequestIdFilter`, named in settings.LOGGING), so one request's log lines
can be found together and a caller can quote the id of a failed request.

A well-formed id sent by a proxy in front (`X-Request-Id`) is kept, so the proxy's logs and ours share
it; anything else is replaced by a fresh one.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-Id"
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,64}")

# A context variable, not a thread-local: daphne runs each request's sync code in a thread of its
# choosing, and asgiref carries context variables there (and back).
_current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def current_request_id() -> str:
    """The id of the request being handled in this context; "" outside a request."""
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


class RequestIdMiddleware:
    """Gives each request an id (`request.request_id`) for its log records and its response header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        offered = request.headers.get(HEADER, "")
        request_id = offered if _WELL_FORMED.fullmatch(offered) else new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        token = _current.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response.setdefault(HEADER, request_id)
        return response


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to records logged during a request (on the handler, so records that propagate
    from any logger get it); records logged outside a request are left without one."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = _current.get()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True
