"""Checking the audit trail's hash chain, and signed checkpoints of its head.

The chain itself is kept by the database (migrations 0002 and 0003: the `audit_event_chain` trigger and
the `audit_event_digest` and `audit_payload_digest` functions). `verify` recomputes every event's hash
with those same functions, in seq order, and names the first broken link: a hash that does not match,
a payload that does not match its digest (for events not erased), or an erased event that holds
anything but the marker or that no later erasure event names. `checkpoint` is a signed statement of
the head at a moment, which `check_checkpoint` later holds the chain to, so a history rewritten from an
older event onwards (and re-hashed consistently) is still caught.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone
from django.utils.crypto import salted_hmac

from audit.models import ERASED_MARKER, ERASURE_ACTION, GENESIS_HASH, AuditEvent, ChainCheck, ChainHead

CHECKPOINT_SALT = "audit.chain.checkpoint"


@dataclass(frozen=True, slots=True)
class Result:
    """What `verify` found: ok with the number of events and the head, or the first broken link."""

    ok: bool
    count: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    broken_seq: int | None = None
    broken_id: int | None = None
    problem: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.count} events, head {self.head_hash}"
        where = f"seq {self.broken_seq}" + (f" (event id {self.broken_id})" if self.broken_id is not None else "")
        return f"audit chain broken at {where}: {self.problem}"


# One pass in seq order: each row next to the row before it (LAG), and its digest recomputed. The first
# row of the range is checked against the row before the range (or, from the start, the genesis link).
_VERIFY_SQL = """
WITH claims AS (
    -- Which erasure event names which erased seq (an erasure event itself is never erased).
    SELECT e.seq AS by_seq, s.value::bigint AS seq
    FROM {table} AS e, jsonb_array_elements(e.after -> 'seqs') AS s(value)
    WHERE e.action = %(erasure_action)s AND e.erased_at IS NULL AND e.seq >= %(from_seq)s
),
links AS (
    SELECT id, seq, prev_hash, hash, erased_at,
           lag(seq) OVER w AS before_seq,
           lag(hash) OVER w AS before_hash,
           audit_event_digest(prev_hash, seq, actor_id, actor_name, action, object_type, object_id,
                              object_repr, payload_digest, created_at) AS digest,
           payload_digest IS NOT DISTINCT FROM audit_payload_digest(before, after) AS payload_matches,
           before IS NOT DISTINCT FROM %(marker)s::jsonb AND after IS NOT DISTINCT FROM %(marker)s::jsonb AS marked,
           action = %(erasure_action)s AS is_erasure
    FROM {table}
    WHERE seq >= %(from_seq)s
    WINDOW w AS (ORDER BY seq)
),
checked AS (
    SELECT id, seq, hash, CASE
        WHEN before_seq IS NULL AND %(from_seq)s = 0 AND seq <> 1
            THEN 'the chain starts at seq ' || seq || ', not 1: the events before it are missing'
        WHEN before_seq IS NULL AND %(from_seq)s = 0 AND prev_hash <> %(genesis)s
            THEN 'the first event does not start from the genesis hash'
        WHEN before_seq IS NOT NULL AND seq <> before_seq + 1
            THEN 'follows seq ' || before_seq || ': seq ' || (before_seq + 1)
                 || CASE WHEN seq - before_seq > 2 THEN ' to ' || (seq - 1) ELSE '' END || ' missing'
        WHEN before_seq IS NOT NULL AND prev_hash IS DISTINCT FROM before_hash
            THEN 'its prev_hash is not the hash of seq ' || before_seq
        WHEN hash IS DISTINCT FROM digest
            THEN 'its content does not match its hash (altered after it was written)'
        WHEN erased_at IS NULL AND NOT payload_matches
            THEN 'its content does not match its hash (its before/after differ from their digest: altered after '
                 || 'it was written)'
        WHEN erased_at IS NOT NULL AND is_erasure
            THEN 'it is an erasure record, which is never erased'
        WHEN erased_at IS NOT NULL AND NOT marked
            THEN 'it is marked erased but holds a payload other than the erasure marker'
        WHEN erased_at IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM claims WHERE claims.seq = links.seq AND claims.by_seq > links.seq)
            THEN 'it is marked erased but no later ' || %(erasure_action)s || ' event names it'
    END AS problem
    FROM links
)
SELECT
    (SELECT count(*) FROM checked WHERE seq >= %(since)s),
    (SELECT seq FROM checked ORDER BY seq DESC LIMIT 1),
    (SELECT hash FROM checked ORDER BY seq DESC LIMIT 1),
    broken.seq, broken.id, broken.problem,
    (SELECT seq FROM {head} WHERE id = 1),
    (SELECT hash FROM {head} WHERE id = 1)
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT seq, id, problem FROM checked WHERE problem IS NOT NULL AND seq >= %(since)s ORDER BY seq LIMIT 1
) AS broken ON true
"""


def verify(since_seq: int | None = None) -> Result:
    """Recompute the chain (from `since_seq`, linked to the event before it; else from the first event)
    and compare it with the stored hashes, the seqs' contiguity and the chain head."""
    since = max(since_seq or 0, 0)
    quote = connection.ops.quote_name
    # One statement, so one snapshot for the events and the head: a writer committing meanwhile cannot
    # look like a missing tail.
    with connection.cursor() as cursor:
        cursor.execute(_VERIFY_SQL.format(table=quote(AuditEvent._meta.db_table), head=quote(ChainHead._meta.db_table)),
                       {"from_seq": max(since - 1, 0), "since": since, "genesis": GENESIS_HASH,
                        "marker": json.dumps(ERASED_MARKER), "erasure_action": ERASURE_ACTION})
        count, last_seq, last_hash, broken_seq, broken_id, problem, head_seq, head_hash = cursor.fetchone()
    if broken_seq is not None:
        return Result(ok=False, count=count, broken_seq=broken_seq, broken_id=broken_id, problem=problem)
    last_seq, last_hash = (last_seq or 0), (last_hash or GENESIS_HASH)
    if head_seq is None:
        head_seq, head_hash = 0, GENESIS_HASH
    if (head_seq, head_hash) != (last_seq, last_hash):
        # The newest events were removed (or the head was moved): nothing after them shows the gap.
        return Result(ok=False, count=count, broken_seq=last_seq + 1, problem=(
            f"the chain head is at seq {head_seq} ({head_hash}) but the last event is seq {last_seq} "
            f"({last_hash}): the newest events are missing or the head was changed"))
    return Result(ok=True, count=count, head_seq=last_seq, head_hash=last_hash)


def record_check(result: Result) -> ChainCheck:
    """Keep a verification's result: the newest one raises or clears the admins' alarm."""
    return ChainCheck.objects.create(ok=result.ok, count=result.count, head_seq=result.head_seq if result.ok else None,
                                     head_hash=result.head_hash if result.ok else "", broken_seq=result.broken_seq,
                                     broken_id=result.broken_id, problem=result.problem)


# --- signed checkpoints ---------------------------------------------------------------------------

_CHECKPOINT_FIELDS = ("seq", "hash", "count", "at")


class CheckpointError(ValueError):
    """A checkpoint file that is malformed, not signed by this console, or that the chain contradicts."""


def _signature(fields: dict[str, Any]) -> str:
    message = json.dumps({k: fields[k] for k in _CHECKPOINT_FIELDS}, sort_keys=True, separators=(",", ":"))
    # HMAC-SHA256 with a key derived from SECRET_KEY and this purpose's salt.
    return salted_hmac(CHECKPOINT_SALT, message, algorithm="sha256").hexdigest()


def checkpoint(result: Result) -> dict[str, Any]:
    """A signed statement of an intact chain's head: {"seq", "hash", "count", "at", "signature"}."""
    if not result.ok:
        raise CheckpointError(f"no checkpoint of a broken chain: {result}")
    fields: dict[str, Any] = {"seq": result.head_seq, "hash": result.head_hash, "count": result.count,
                              "at": timezone.now().isoformat()}
    return {**fields, "signature": _signature(fields)}


def check_checkpoint(data: Any) -> None:
    """Raise CheckpointError unless `data` is a checkpoint this console signed and the chain still holds
    the event it names (the same hash at the same seq)."""
    if not isinstance(data, dict) or any(k not in data for k in (*_CHECKPOINT_FIELDS, "signature")):
        raise CheckpointError(f"a checkpoint has the fields {', '.join(_CHECKPOINT_FIELDS)} and signature")
    if not isinstance(data["signature"], str) or not hmac.compare_digest(data["signature"], _signature(data)):
        raise CheckpointError("the checkpoint's signature is not valid (altered, or signed with another SECRET_KEY)")
    seq, expected = data["seq"], data["hash"]
    if seq == 0:
        return  # a checkpoint of the empty chain: every chain contains it
    stored = AuditEvent.objects.filter(seq=seq).values_list("hash", flat=True).first()
    if stored is None:
        raise CheckpointError(f"the chain no longer has seq {seq}, which the checkpoint of {data['at']} names")
    if stored != expected:
        raise CheckpointError(f"seq {seq} has hash {stored}, but the checkpoint of {data['at']} says {expected}: "
                              "the history up to it was rewritten")
