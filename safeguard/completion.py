"""What an engine is given and what it gives back, one item at a time."""

from __future__ import annotations

from dataclasses import dataclass

from safeguard.prompt import RenderedPrompt
from safeguard.specs import Content, PolicySpec

FINISH_REASONS = ("stop", "length", "error")


@dataclass(slots=True)
class Request:
    """One item to classify. `key` is the caller's id and comes back on the Completion."""

    key: str
    policy: PolicySpec
    content: Content
    prompt: RenderedPrompt
    max_tokens: int


@dataclass(slots=True)
class Completion:
    """The model's raw answer to one Request.

    Token-level engines (vllm, scripted) fill `token_ids` with the generated harmony
    tokens; HTTP engines fill `text` (the final channel) and `reasoning` (the
    analysis channel) as the server split them. `finish_reason` is "stop",
    "length" (the token budget ran out) or "error" (see `error`).
    """

    key: str
    token_ids: list[int] | None = None
    text: str | None = None
    reasoning: str | None = None
    finish_reason: str = "stop"
    error: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    model: str = ""
    latency_s: float = 0.0
