"""Errors the API answers with, shaped like OpenAI's ({"error": {message, type, param, code}}), so the
openai SDK raises them with their message and every client finds the field at fault in `param`; and
`ClientError`, the refusal of an admin's change on the Integrations pages."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "service_unavailable_error",
}


class ApiError(Exception):
    """A refused request: nothing was changed. `param` names the offending field (items[3].content)."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        body: dict[str, Any] = {
            "error": {
                "message": self.message,
                "type": _TYPES.get(self.status, "invalid_request_error"),
                "param": self.param,
                "code": self.code or None,
            }
        }
        response = JsonResponse(body, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> ApiError:
    """A 400 naming the field at fault."""
    return ApiError(400, f"{param}: {message}" if param else message, param=param, code=code)


class ClientError(ValueError):
    """A refused change to clients, routing rules or labelled data; `field` names the form field at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field
