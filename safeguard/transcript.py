"""A plain-text transcript format for conversations under review.

The model gets a conversation as the text of one user message. Each turn is a
block that starts with a header line and is followed by the turn's text; blocks
are separated by one blank line::

    [turn 1 of 2: user]
    How do I get free money?

    [turn 2 of 2: assistant]
    Click here!

Headers carry both the index and the total so a reader can tell where the
conversation ends. So that a turn's text can never forge a header, any line in
it that begins with ``[turn `` (after any number of backslashes) gets one more
leading backslash; :func:`parse_transcript` removes it again, so the format
round-trips exactly.
"""

from __future__ import annotations

import re

from safeguard.specs import Turn

_HEADER = re.compile(r"^\[turn (\d+) of (\d+): ([^\]\n]*)\]$", re.MULTILINE)
_NEEDS_ESCAPE = re.compile(r"^(\\*)\[turn ", re.MULTILINE)
_ESCAPED = re.compile(r"^\\(\\*)\[turn ", re.MULTILINE)
BLOCK_SEPARATOR = "\n\n"


def _clean_role(role: str) -> str:
    # A role is a single short word in practice; newlines or "]" would break the header line.
    cleaned = " ".join(role.replace("]", " ").split())
    return cleaned or "unknown"


def escape_turn_text(text: str) -> str:
    return _NEEDS_ESCAPE.sub(lambda m: "\\" + m.group(1) + "[turn ", text)


def unescape_turn_text(text: str) -> str:
    return _ESCAPED.sub(lambda m: m.group(1) + "[turn ", text)


def format_transcript(turns: tuple[Turn, ...] | list[Turn]) -> str:
    """Render conversation turns as the transcript text described in the module docstring."""
    total = len(turns)
    blocks = [
        f"[turn {index} of {total}: {_clean_role(turn.role)}]\n{escape_turn_text(turn.content)}"
        for index, turn in enumerate(turns, start=1)
    ]
    return BLOCK_SEPARATOR.join(blocks)


def parse_transcript(text: str) -> tuple[Turn, ...]:
    """Read a transcript back into turns (the inverse of :func:`format_transcript`)."""
    headers = list(_HEADER.finditer(text))
    if not headers:
        return ()
    # Each body runs to the separator before the next header; the last one to the end.
    ends = [following.start() - len(BLOCK_SEPARATOR) for following in headers[1:]] + [len(text)]
    turns = []
    for header, body_end in zip(headers, ends, strict=True):
        body_start = header.end() + 1  # the newline after the header
        turns.append(Turn(role=header.group(3), content=unescape_turn_text(text[body_start:body_end])))
    return tuple(turns)
