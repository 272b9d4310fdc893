"""The reasoner's SQL: claiming a batch, storing its results, sweeping expired leases. Kept raw because
these statements are the hot path and need RETURNING; the audit rows they write are built by the
audit app's own `insert_sql`, so their columns and actor rules are the ones every other writer uses.

The database is the queue. A claim is one statement (UPDATE ... WHERE id = ANY(SELECT ... FOR UPDATE
SKIP LOCKED) RETURNING), so any number of workers share the queue without handing out a row twice.
A store is one statement too, guarded by "still running and still mine".
"""

from __future__ import annotations

from audit.writer import insert_sql
from console.models import Classification, Item
from evaluations.models import EvaluationResult, EvaluationRun, Example

_CLAIM_SQL = """
WITH claimed AS (
    UPDATE {c} AS c
    SET status = 'running', worker = %(worker)s, started_at = %(now)s, lease_expires_at = %(lease)s,
        attempts = c.attempts + 1
    WHERE c.id = ANY(ARRAY(
        SELECT q.id FROM {c} AS q
        WHERE q.status = 'queued' AND q.stage = %(stage)s
          AND (q.lease_expires_at IS NULL OR q.lease_expires_at <= %(now)s) {only}
        ORDER BY q.created_at, q.id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED))
    RETURNING c.id, c.item_id, c.policy_version_id, c.attempts)
SELECT claimed.id, claimed.policy_version_id, claimed.attempts, i.id, i.kind, i.content, i.turns,
       i.source, i.external_id
FROM claimed JOIN {i} AS i ON i.id = claimed.item_id
ORDER BY claimed.id
"""

WRITE_COLUMNS = (
    ("status", "text"),
    ("worker", "text"),
    ("label", "text"),
    ("violation", "boolean"),
    ("category", "text"),
    ("rule_ids", "jsonb"),
    ("confidence", "float8"),
    ("rationale", "text"),
    ("reasoning", "text"),
    ("raw_output", "text"),
    ("error", "text"),
    ("parse_quality", "text"),
    ("parse_notes", "jsonb"),
    ("model_name", "text"),
    ("prompt_tokens", "int4"),
    ("completion_tokens", "int4"),
    ("latency_ms", "float8"),
    ("needs_review", "boolean"),
    ("lease_expires_at", "timestamptz"),
    ("finished_at", "timestamptz"),
)
# A batch's rows travel as one JSON array (json.dumps encodes it in C) rather than as hundreds of
# placeholders that the ORM and psycopg quote one by one: that quoting was most of the write time.
# The audit events of a claim: one "classification.started" per claimed row.
_AUDIT_SQL = insert_sql(
    "jsonb_to_recordset(%(rows)s::jsonb) AS e(id bigint, repr text, before jsonb, after jsonb)",
    action="%(action)s", object_id="e.id::text", object_repr="e.repr", before="e.before", after="e.after",
    order_by="e.id",
)

# One statement stores a batch and audits it. The WHERE clause is the guard: a row the sweeper
# re-queued (or another worker now holds) is not "running and mine", so it is neither written nor
# audited, and the ids that come back are exactly the rows written.
_WRITE_SQL = """
WITH v AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
    AS v(id bigint, {typed}, action text, repr text, after jsonb)),
written AS (
    UPDATE {c} AS c SET {assignments}
    FROM v
    WHERE c.id = v.id AND c.status = 'running' AND c.worker = %(worker)s
    RETURNING c.id)
""" + insert_sql(
    "v JOIN written ON written.id = v.id",
    action="v.action", object_id="v.id::text", object_repr="v.repr", before="""'{"status": "running"}'::jsonb""",
    after="v.after", order_by="v.id",
) + " RETURNING object_id"

_SWEEP_SQL = """
WITH stale AS (
    SELECT id, worker FROM {c}
    WHERE status = 'running' AND lease_expires_at < %(now)s
    FOR UPDATE SKIP LOCKED)
UPDATE {c} AS c
SET status = CASE WHEN c.attempts >= %(attempts)s THEN 'failed' ELSE 'queued' END,
    worker = CASE WHEN c.attempts >= %(attempts)s THEN stale.worker ELSE '' END,
    lease_expires_at = NULL,
    finished_at = CASE WHEN c.attempts >= %(attempts)s THEN %(now)s::timestamptz END,
    needs_review = c.needs_review OR c.attempts >= %(attempts)s,
    error = CASE WHEN c.attempts >= %(attempts)s
        THEN 'the worker running it stopped answering ' || c.attempts || ' times (lease expired)'
        ELSE c.error END
FROM stale
WHERE c.id = stale.id
RETURNING c.id, c.status, c.attempts, stale.worker
"""

# The heartbeat: a worker renews the leases of the rows it holds while the engine runs them, so a lease
# can be short (a dead worker's rows are swept soon) without a slow batch being taken from a live one.
# A row that has been running longer than `oldest` allows is not renewed: its worker is hung, not slow.
_RENEW_SQL = """
UPDATE {c} SET lease_expires_at = %(lease)s
WHERE id = ANY(%(ids)s) AND status = 'running' AND worker = %(worker)s AND started_at > %(oldest)s
RETURNING id
"""

# A batch whose results could not be stored goes back to the queue at once (audited), instead of
# waiting out its lease; the same "running and mine" guard as a store.
_RELEASE_SQL = """
WITH v AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(id bigint, repr text, after jsonb)),
released AS (
    UPDATE {c} AS c SET status = 'queued', worker = '', lease_expires_at = NULL
    FROM v
    WHERE c.id = v.id AND c.status = 'running' AND c.worker = %(worker)s
    RETURNING c.id)
""" + insert_sql(
    "v JOIN released ON released.id = v.id",
    action="'classification.released'", object_id="v.id::text", object_repr="v.repr",
    before="""'{"status": "running"}'::jsonb""", after="v.after", order_by="v.id",
) + " RETURNING object_id"


# The evaluation lane: the same claim, store, renew, release and sweep over evaluation results, which
# are not audited row by row (their runs are). Only results of runs still running are claimed, so a
# cancelled run stops at once. A result is about a labelled example (prompted as a conversation when it
# has turns) or, in a shadow run, about a live item.
_EVAL_CLAIM_SQL = """
WITH claimed AS (
    UPDATE {r} AS c
    SET status = 'running', worker = %(worker)s, started_at = %(now)s, lease_expires_at = %(lease)s,
        attempts = c.attempts + 1
    WHERE c.id = ANY(ARRAY(
        SELECT q.id FROM {r} AS q JOIN {run} AS run ON run.id = q.run_id
        WHERE q.status = 'queued' AND run.status = 'running'
          AND (q.lease_expires_at IS NULL OR q.lease_expires_at <= %(now)s)
        ORDER BY q.created_at, q.id
        LIMIT %(limit)s
        FOR UPDATE OF q SKIP LOCKED))
    RETURNING c.id, c.example_id, c.item_id, c.run_id, c.attempts)
SELECT claimed.id, run.policy_version_id, claimed.attempts, COALESCE(e.id, i.id),
       CASE WHEN e.id IS NULL THEN i.kind
            WHEN e.turns IS NOT NULL AND jsonb_typeof(e.turns) = 'array' THEN 'conversation'
            ELSE e.kind END,
       COALESCE(e.content, i.content), COALESCE(e.turns, i.turns), claimed.run_id
FROM claimed
LEFT JOIN {e} AS e ON e.id = claimed.example_id
LEFT JOIN {i} AS i ON i.id = claimed.item_id
JOIN {run} AS run ON run.id = claimed.run_id
ORDER BY claimed.id
"""

_EVAL_WRITE_SQL = """
WITH v AS (SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS v(id bigint, {typed}))
UPDATE {r} AS c SET {assignments}
FROM v
WHERE c.id = v.id AND c.status = 'running' AND c.worker = %(worker)s
RETURNING c.id, c.run_id
"""

_EVAL_RENEW_SQL = _RENEW_SQL.replace("{c}", "{r}")

_EVAL_RELEASE_SQL = """
UPDATE {r} SET status = 'queued', worker = '', lease_expires_at = NULL
WHERE id = ANY(%(ids)s) AND status = 'running' AND worker = %(worker)s
RETURNING id
"""

_EVAL_SWEEP_SQL = _SWEEP_SQL.replace("{c}", "{r}").replace(
    "RETURNING c.id, c.status, c.attempts, stale.worker", "RETURNING c.id, c.run_id")


def _sql(template: str) -> str:
    return (
        template.replace("{c}", Classification._meta.db_table)
        .replace("{i}", Item._meta.db_table)
        .replace("{r}", EvaluationResult._meta.db_table)
        .replace("{run}", EvaluationRun._meta.db_table)
        .replace("{e}", Example._meta.db_table)
        .replace("{typed}", ", ".join(f"{name} {kind}" for name, kind in WRITE_COLUMNS))
        .replace("{assignments}", ", ".join(f"{name} = v.{name}" for name, _ in WRITE_COLUMNS))
    )


CLAIM_SQL = _sql(_CLAIM_SQL.replace("{only}", ""))
CLAIM_IDS_SQL = _sql(_CLAIM_SQL.replace("{only}", "AND q.id = ANY(%(ids)s)"))
AUDIT_SQL = _sql(_AUDIT_SQL)
WRITE_SQL = _sql(_WRITE_SQL)
SWEEP_SQL = _sql(_SWEEP_SQL)
RENEW_SQL = _sql(_RENEW_SQL)
RELEASE_SQL = _sql(_RELEASE_SQL)
EVAL_CLAIM_SQL = _sql(_EVAL_CLAIM_SQL)
EVAL_WRITE_SQL = _sql(_EVAL_WRITE_SQL)
EVAL_RENEW_SQL = _sql(_EVAL_RENEW_SQL)
EVAL_RELEASE_SQL = _sql(_EVAL_RELEASE_SQL)
EVAL_SWEEP_SQL = _sql(_EVAL_SWEEP_SQL)
