"""What JSON a request may carry, checked once for every API body before any field is read.

Python's json module accepts documents that break later, far from the request: nesting thousands of
levels deep (a RecursionError while encoding or storing it), numbers too large for a float (`1e999`
is read as infinity and written back as `Infinity`, which is not JSON), NUL characters (PostgreSQL text
and jsonb refuse them) and lone surrogates such as `\\ud800` (not encodable as UTF-8). Each is refused
here with a 400 that names the JSON path at fault (`items[3].metadata.tags[0]`), so nothing is stored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from api.errors import ApiError, invalid

MAX_DEPTH = 32  # objects and arrays inside one another; items need 4, metadata a few more
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(body: bytes) -> Any:
    """The body as JSON (400 when it is not), then checked by `check`."""
    try:
        value = json.loads(body, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise ApiError(400, "The body is not UTF-8 text", code="invalid_json") from None
    except RecursionError:
        raise ApiError(400, f"The body nests objects and arrays too deeply (at most {MAX_DEPTH} levels)",
                       code="too_deep") from None
    except ValueError as exc:
        raise ApiError(400, f"The body is not valid JSON: {exc}", code="invalid_json") from None
    check(value)
    return value


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check_text(text: str, param: str) -> None:
    """Refuse a text from elsewhere in the request (a path segment, a query value) that cannot be stored."""
    _string(text, param, "the text")


def _string(text: str, path: str, what: str) -> None:
    bad = _BAD_CHARACTER.search(text)
    if bad is None:
        return
    if bad.group() == "\x00":
        raise invalid(f"{what} contains a NUL character (\\u0000)", path or None, "invalid_character")
    raise invalid(f"{what} contains a lone surrogate (\\u{ord(bad.group()):04x}), which is not valid Unicode text",
                  path or None, "invalid_character")


def check(value: Any) -> None:
    """Refuse what cannot be stored (see the module docstring); iterative, so depth cannot overflow."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise invalid(f"nests objects and arrays more than {MAX_DEPTH} levels deep", path or None,
                              "too_deep")
            if isinstance(node, dict):
                for key, child in node.items():
                    _string(key, path, f"the key {key[:20]!r}")
                    stack.append((child, _join(path, key), depth + 1))
            else:
                stack.extend((child, _join(path, index), depth + 1) for index, child in enumerate(node))
        elif isinstance(node, str):
            _string(node, path, "the text")
        elif isinstance(node, float) and not math.isfinite(node):  # 1e999 is read as infinity
            raise invalid("is a number too large to store", path or None, "invalid_number")
