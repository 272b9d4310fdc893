"""The structured reading of one completion."""

from __future__ import annotations

from dataclasses import dataclass, field

# done: a verdict was read. unparsable: the answer could not be read (never treated as safe).
# truncated: the token budget ran out before a readable final answer. failed: the engine errored.
VERDICT_STATUSES = ("done", "unparsable", "truncated", "failed")


@dataclass(slots=True)
class Verdict:
    status: str
    label: str = ""
    violation: bool | None = None
    category: str = ""
    rule_ids: list[str] = field(default_factory=list)
    confidence: float | None = None
    rationale: str = ""
    reasoning: str = ""
    raw_output: str = ""
    error: str = ""
