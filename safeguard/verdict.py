"""The structured reading of one completion: its status, the verdict, and how the answer was read."""

from __future__ import annotations

from dataclasses import dataclass, field

# done: a verdict was read. conflicting: the answer (or the answer and the reasoning) says both
# "violation" and "no violation". unparsable: the answer could not be read. truncated: the token budget
# ran out, or the final answer was cut off before its end token. failed: the engine errored.
# Every status but "done" carries no verdict: such a result goes to a person, never counts as safe.
VERDICT_STATUSES = ("done", "conflicting", "unparsable", "truncated", "failed")

# How the final answer was read (a classification's "parse quality"):
# clean: in the shape the policy asks for, nothing to strip or guess.
# recovered: read after removing what was not the decision (an echoed output instruction, markdown,
#   a decision prefix, an explanation around it); `Verdict.notes` says what was done.
# conflicting / truncated / unparsable: as the statuses above; `Verdict.error` says why.
# "" for results that had no answer to read (engine failures).
PARSE_QUALITIES = ("clean", "recovered", "conflicting", "truncated", "unparsable")


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
    quality: str = ""
    notes: list[str] = field(default_factory=list)
