"""Reading a stored answer again with the current parser.

A classification keeps the model's raw output: for token engines the decoded harmony completion with
its special tokens, for HTTP engines the final answer (and the reasoning in its own column). Both
can be turned back into the Completion the parser first saw, so a better parser can re-read
answers already stored without running the model again. The finish reason is not stored; an answer
stored as truncated is re-read as cut off by the budget, every other one as finished.
"""

from __future__ import annotations

from safeguard.completion import Completion
from safeguard.vocab import get_encoding


def stored_completion(raw_output: str, reasoning: str, was_truncated: bool, key: str = "") -> Completion:
    """The Completion a stored raw output came from (see the module docstring)."""
    finish = "length" if was_truncated else "stop"
    if "<|channel|>" in raw_output:
        tokens = get_encoding().encode(raw_output, allowed_special="all")
        return Completion(key=key, token_ids=tokens, finish_reason=finish)
    return Completion(key=key, text=raw_output, reasoning=reasoning or None, finish_reason=finish)


def reading_of(status: str, violation: bool | None) -> str:
    """A short name for what a result says, for reports of what re-reading changes."""
    if status != "done":
        return status
    return "violation" if violation else "safe"
