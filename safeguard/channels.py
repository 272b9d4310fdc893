"""Splitting a completion into harmony channels: analysis (reasoning) and final (the answer).

Token completions go through harmony's own parser, except for the shape a
healthy gpt-oss completion always has, which a small token-level walker reads
directly: ``<|channel|>NAME<|message|>TEXT<|end|>`` messages, the later ones
opened by ``<|start|>assistant``, the last possibly ending in ``<|return|>`` or
cut off. Harmony's parser costs about 0.7 ms per call whatever the length (it
is set up anew each time), which alone would cap a core at ~1,400 items/s; the
walker takes tens of microseconds. Anything it does not recognise exactly
(a constrain or recipient in a header, a stray token, invalid UTF-8) goes to
harmony, and tests/safeguard/test_channels.py checks on generated completions
that whenever the walker answers, harmony answers the same.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from openai_harmony import HarmonyError, Role, TextContent

from safeguard.vocab import get_encoding

FINAL_MARKER = "<|channel|>final"

# A header runs from <|channel|> to <|message|> and may hold " <|constrain|>json" or
# " to=..."; taking the last <|channel|> before each <|message|> skips broken headers.
_LENIENT_HEADER = re.compile(r"<\|channel\|>((?:(?!<\|channel\|>|<\|message\|>).)*)<\|message\|>", re.DOTALL)
_LENIENT_BODY_END = re.compile(r"<\|(?:end|return|call|start|channel)\|>")
_CLOSING = frozenset({"<|end|>", "<|return|>", "<|call|>"})
_CHANNEL_NAME = re.compile(r"\s*([A-Za-z_]+)")
# What servers that strip special tokens make of a harmony completion.
_STRIPPED_HARMONY = re.compile(r"\s*analysis(.*?)assistantfinal(.*)", re.DOTALL)


@dataclass(slots=True)
class Channels:
    analysis: str  # the reasoning, "" when there is none
    final: str | None  # None when no final-channel message was found
    raw: str  # the decoded completion, special tokens included
    # Whether the final message ended with its own end token (<|return|>, <|end|>, <|call|>): False when
    # the completion stops inside it, None when that cannot be known (HTTP engines split for us).
    final_closed: bool | None = None


def split_text(raw: str) -> Channels:
    """Hand-rolled split on harmony markers, for completions harmony's parser rejects."""
    analysis_parts: list[str] = []
    final: str | None = None
    final_closed: bool | None = None
    for header in _LENIENT_HEADER.finditer(raw):
        name_match = _CHANNEL_NAME.match(header.group(1))
        name = name_match.group(1) if name_match else ""
        body_end = _LENIENT_BODY_END.search(raw, header.end())
        body = raw[header.end() : body_end.start() if body_end else len(raw)]
        if name == "final":
            final = body
            final_closed = body_end is not None and body_end.group(0) in _CLOSING
        elif name == "analysis":
            analysis_parts.append(body)
    return Channels(analysis="\n\n".join(analysis_parts), final=final, raw=raw, final_closed=final_closed)


@dataclass(frozen=True, slots=True)
class _Markers:
    first_special: int
    start: int
    channel: int
    message: int
    end: int
    return_: int
    assistant: tuple[int, ...]
    channel_names: dict[tuple[int, ...], str]


@functools.cache
def _markers() -> _Markers:
    encoding = get_encoding()

    def special(text: str) -> int:
        # allowed_special="all" skips harmony's per-call regex over the ~1,100 special tokens.
        return encoding.encode(text, allowed_special="all")[0]

    # Ordinary tokens are numbered below every special token, so one comparison tells them apart.
    first_special = min(encoding.encode("".join(encoding.special_tokens_set), allowed_special="all"))
    return _Markers(
        first_special=first_special,
        start=special("<|start|>"),
        channel=special("<|channel|>"),
        message=special("<|message|>"),
        end=special("<|end|>"),
        return_=special("<|return|>"),
        assistant=tuple(encoding.encode("assistant")),
        channel_names={tuple(encoding.encode(name)): name for name in ("analysis", "final", "commentary")},
    )


def split_canonical(token_ids: Sequence[int]) -> Channels | None:
    """Read a completion of the canonical shape (module docstring); None for anything else."""
    marks_of = _markers()
    marks = [index for index, token in enumerate(token_ids) if token >= marks_of.first_special]
    if not marks or marks[0] != 0:
        return None
    encoding = get_encoding()
    analysis_parts: list[str] = []
    final: str | None = None
    final_closed: bool | None = None
    q = 0  # index into marks
    while True:
        at = marks[q]
        if token_ids[at] == marks_of.start:
            # <|start|>assistant<|channel|>: the role must be exactly "assistant".
            if q + 1 >= len(marks):
                return None
            channel_at = marks[q + 1]
            if tuple(token_ids[at + 1 : channel_at]) != marks_of.assistant:
                return None
            q, at = q + 1, channel_at
        elif q != 0:
            return None
        if token_ids[at] != marks_of.channel or q + 1 >= len(marks):
            return None
        message_at = marks[q + 1]
        if token_ids[message_at] != marks_of.message:
            return None
        name = marks_of.channel_names.get(tuple(token_ids[at + 1 : message_at]))
        if name is None:
            return None
        body_end = marks[q + 2] if q + 2 < len(marks) else len(token_ids)
        try:
            text = encoding.decode_utf8(token_ids[message_at + 1 : body_end])
        except Exception:  # invalid UTF-8 (e.g. cut mid-character): let harmony decide
            return None
        if name == "final":
            final = text
            final_closed = body_end < len(token_ids)
        elif name == "analysis":
            analysis_parts.append(text)
        if body_end == len(token_ids):
            break  # cut off inside the body, as a "length" finish leaves it
        terminator = token_ids[body_end]
        if terminator == marks_of.return_:
            if body_end != len(token_ids) - 1:
                return None
            break
        if terminator != marks_of.end:
            return None
        q += 3  # past <|channel|>, <|message|> and <|end|>
        if body_end == len(token_ids) - 1:
            break
        if q >= len(marks) or marks[q] != body_end + 1:
            return None
    return Channels(
        analysis="\n\n".join(analysis_parts), final=final, raw=encoding.decode(token_ids), final_closed=final_closed
    )


def split_tokens(token_ids: Sequence[int]) -> Channels:
    """Split generated harmony tokens (the part after ``<|start|>assistant``)."""
    canonical = split_canonical(token_ids)
    if canonical is not None:
        return canonical
    encoding = get_encoding()
    raw = encoding.decode(token_ids)
    try:
        messages = encoding.parse_messages_from_completion_tokens(token_ids, Role.ASSISTANT)
    except HarmonyError:
        return split_text(raw)
    analysis_parts: list[str] = []
    final: str | None = None
    for message in messages:
        text = "".join(part.text for part in message.content if isinstance(part, TextContent))
        if message.channel == "final":
            final = text
        elif message.channel in ("analysis", None):
            analysis_parts.append(text)
    if final is None and FINAL_MARKER in raw:
        # A broken header can make harmony swallow the final message into the one
        # before it; the hand-rolled split recovers it.
        return split_text(raw)
    # Harmony accepts a final message cut off mid-body; the lenient split knows whether it was closed.
    final_closed = split_text(raw).final_closed if final is not None else None
    return Channels(analysis="\n\n".join(analysis_parts), final=final, raw=raw, final_closed=final_closed)


def split_http(text: str | None, reasoning: str | None) -> Channels:
    """Channels from an OpenAI-compatible response (content = final, reasoning field = analysis).

    Servers without a harmony-aware reasoning parser hand back the raw completion
    in `content`, either with the special tokens or with them stripped
    ("analysis...assistantfinal..."); both are split here.
    """
    if text is not None and reasoning is None:
        if "<|channel|>" in text:
            return split_text(text)
        stripped = _STRIPPED_HARMONY.fullmatch(text)
        if stripped:
            return Channels(analysis=stripped.group(1).strip(), final=stripped.group(2), raw=text)
    return Channels(analysis=reasoning or "", final=text, raw=text or "")
