"""What moves through the reasoner pipeline: the rows a worker claimed (`Claimed`), their new states
(`Outcome`, whose fields are the columns reasoner.sql.WRITE_COLUMNS writes) and a claimed batch of both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import safeguard

# The two lanes of work: live classifications, and the results of evaluation runs, which a worker takes
# only when no live work is queued (and never more than SAFEGUARD_EVAL_BATCH_SIZE in one batch).
LIVE = "live"
EVALUATION = "evaluation"


@dataclass(slots=True)
class Claimed:
    """One classification (or evaluation result) this worker holds, with what is needed to prompt for it."""

    id: int
    version_id: int
    attempts: int
    kind: str
    content: str
    turns: Any
    item_repr: str
    lane: str = LIVE

    @property
    def key(self) -> tuple[str, int]:
        return (self.lane, self.id)


@dataclass(slots=True)
class Outcome:
    """The new state of one claimed classification; the fields are the columns `_write` sets."""

    id: int
    action: str  # the audit action, "classification.<what happened>"
    repr: str
    attempts: int
    status: str
    worker: str
    label: str = ""
    violation: bool | None = None
    category: str = ""
    rule_ids: list[str] = field(default_factory=list)
    confidence: float | None = None
    rationale: str = ""
    reasoning: str = ""
    raw_output: str = ""
    error: str = ""
    parse_quality: str = ""
    parse_notes: list[str] = field(default_factory=list)
    model_name: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    needs_review: bool = False
    lease_expires_at: datetime | None = None
    finished_at: datetime | None = None
    lane: str = LIVE

    @property
    def key(self) -> tuple[str, int]:
        return (self.lane, self.id)


@dataclass(slots=True)
class Batch:
    """A claimed batch: requests for the engine (aligned with `sent`) and outcomes already known."""

    sent: list[Claimed] = field(default_factory=list)
    requests: list[safeguard.Request] = field(default_factory=list)
    ready: list[Outcome] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent) + len(self.ready)

    @property
    def keys(self) -> list[tuple[str, int]]:
        """(lane, id) of every row held: ids alone are not unique across the two lanes' tables."""
        return [row.key for row in self.sent] + [o.key for o in self.ready]

    def extend(self, other: Batch) -> None:
        self.sent += other.sent
        self.requests += other.requests
        self.ready += other.ready
