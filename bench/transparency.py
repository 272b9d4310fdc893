"""Enforcement at volume: how fast the actions of verdicts no person decided are recorded (the statement
`enforcement.automated.record_for_items` runs once per reasoner batch in the webhook worker), and how
long the transparency report (`enforcement.report.build`) takes over a million decisions.

    python3 dev.py manage bench_transparency                       # 1,000,000 decisions, 20,000 recorded
    python3 dev.py manage bench_transparency --decisions 200000 --record 5000

It works in a scratch database of its own (`<database>_bench_transparency`, made afresh and dropped at
the end), never the console's. The history is filled with set-based SQL (INSERT ... SELECT FROM
generate_series): items over a year, one classification each, a third decided by the model alone and
the rest by moderators (one review in five an override), the actions and statements those decisions
call for, and a complaint against one decision in two hundred.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bench import scratch
from bench.firstpass import cpu_model

FILL_SQL = [
    # Items over the last year, oldest first; one in ten came from a notice, one in fifty from a trusted flagger.
    """
    INSERT INTO console_item (kind, source, external_id, content, turns, metadata, created_at)
    SELECT 'message', 'bench', 'bench-' || g, 'Message number ' || g, NULL,
           CASE WHEN g %% 50 = 0 THEN '{"source_type": "trusted_flagger"}'::jsonb
                WHEN g %% 10 = 0 THEN '{"source_type": "notice"}'::jsonb ELSE '{}'::jsonb END,
           %(now)s - make_interval(secs => (%(items)s - g) * 31536000.0 / %(items)s) - interval '1 day'
    FROM generate_series(1, %(items)s) AS g
    """,
    # One reasoner verdict per item: a third closed by the model (needs no review), the rest decided by
    # moderators; two in five are violations, under four policies and four categories.
    """
    INSERT INTO console_classification (item_id, policy_version_id, stage, status, label, violation, category,
        rule_ids, confidence, rationale, reasoning, raw_output, error, model_name, needs_review, review_status,
        attempts, worker, created_at, started_at, finished_at)
    SELECT id, (%(versions)s::bigint[])[1 + id %% 4], 'reasoner', 'done',
           CASE WHEN v THEN 'SP2' ELSE 'SP0' END, v,
           CASE WHEN NOT v THEN 'SP0' WHEN id %% 3 = 1 THEN 'SP3' ELSE 'SP2' END,
           CASE WHEN v THEN '["SP2.a"]'::jsonb ELSE '[]'::jsonb END, 0.9,
           CASE WHEN v THEN 'Links to a shop nobody asked for (SP2.a).' ELSE 'Ordinary talk.' END,
           '', '', '', 'gpt-oss-safeguard-20b', id %% 3 <> 0, CASE WHEN id %% 3 = 0 THEN 'open' ELSE 'decided' END,
           1, 'bench', created_at, created_at, created_at + make_interval(secs => (2 + id %% 50)::float8)
    FROM (SELECT id, created_at, id %% 5 < 2 AS v FROM console_item) AS i
    """,
    """
    INSERT INTO console_review (classification_id, decision, label, category, reason, misapplied_rule, reviewer_id,
        created_at)
    SELECT c.id, CASE WHEN c.id %% 5 = 0 THEN 'override' ELSE 'approve' END,
           CASE WHEN c.id %% 5 = 0 THEN CASE WHEN c.violation THEN 'SP0' ELSE 'SP2' END ELSE '' END, '',
           CASE WHEN c.id %% 5 = 0 THEN 'The model misread it.' ELSE '' END, '', %(reviewer)s,
           c.finished_at + make_interval(mins => (5 + c.id %% 600)::int)
    FROM console_classification c WHERE c.review_status = 'decided'
    """,
    # The moderators' actions as `enforcement.actions` records them: the reviewed verdict's code, or the
    # override's; the default rule (remove a violation, nothing for safe content).
    """
    INSERT INTO enforcement_action (classification_id, item_id, review_id, policy_version_id, decided_code, violation,
        action, duration_days, decided_at, created_at, updated_at)
    SELECT c.id, c.item_id, r.id, c.policy_version_id,
           CASE WHEN r.decision = 'override' THEN r.label ELSE c.category END, w.v,
           CASE WHEN w.v THEN 'remove' ELSE 'none' END, NULL, r.created_at, r.created_at, r.created_at
    FROM console_classification c JOIN console_review r ON r.classification_id = c.id
    CROSS JOIN LATERAL (SELECT CASE WHEN r.decision = 'override' THEN r.label <> 'SP0' ELSE c.violation END AS v) w
    """,
    """
    INSERT INTO enforcement_statement (action_id, puid, facts, decision_ground, ground, legal_ground, cited_rules,
        automated_detection, automated_decision, source_type, category, application_date, content_date, end_date,
        withdrawn_at, created_at, updated_at, edited_by_id)
    SELECT a.id, gen_random_uuid(), 'Links to a shop nobody asked for.',
           CASE WHEN a.id %% 40 = 0 THEN 'illegal_content' ELSE 'incompatible_content' END, 'Bench policy, version 1',
           CASE WHEN a.id %% 40 = 0 THEN 'Consumer protection law' ELSE '' END, '[]'::jsonb, true,
           CASE WHEN r.decision = 'approve' THEN 'partially' ELSE 'not_automated' END, 'voluntary',
           'STATEMENT_CATEGORY_SCAMS_AND_FRAUD', a.decided_at::date, a.decided_at::date, NULL, NULL, a.created_at,
           a.created_at, NULL
    FROM enforcement_action a JOIN console_review r ON r.id = a.review_id WHERE a.action <> 'none'
    """,
]

# Complaints against one decision in two hundred: most decided within a fortnight, one in four reversed.
APPEALS_SQL = """
INSERT INTO enforcement_appeal (item_id, action_id, external_id, complainant, reason, status, filed_by_id, filed_via,
    received_at, due_at, original_reviewer_id, decided_by_id, decided_at, outcome_reason, reversal_id)
SELECT a.item_id, a.id, '', 'affected', 'Wrong decision.', s.status, NULL, 'api:bench',
       a.decided_at + interval '1 day', a.decided_at + interval '15 days', NULL,
       CASE WHEN s.status <> 'open' THEN %(decider)s END,
       CASE WHEN s.status <> 'open' THEN a.decided_at + make_interval(days => (2 + a.id %% 12)::int) END,
       CASE WHEN s.status <> 'open' THEN 'Looked again.' ELSE '' END,
       CASE WHEN s.status = 'reversed' THEN (SELECT min(id) FROM console_review) END
FROM enforcement_action a
CROSS JOIN LATERAL (SELECT CASE WHEN a.id %% 1000 = 0 THEN 'open' WHEN a.id %% 800 = 0 THEN 'reversed'
                           ELSE 'upheld' END AS status) s
WHERE a.id %% 200 = 0
"""


def fill(decisions: int, write: Callable[[str], None]) -> tuple[list[int], int]:
    """The history; returns the items whose verdicts no person decided (their actions are not made yet)
    and the user who decides the complaints."""
    from django.contrib.auth import get_user_model

    from console.models import Classification
    from policies_app import services as policy_services
    from policies_app.demo import load_policy_text

    started = time.perf_counter()
    versions = []
    for n in range(4):
        draft = policy_services.create_policy(
            actor=None, name=f"Bench policy {n + 1}", text=load_policy_text("spam-and-scams"),
            label_scheme="categories", labels=["SP0", "SP2", "SP3", "SP4"], output_format="json")
        versions.append(policy_services.publish_version(actor=None, policy=draft.policy, version=draft).pk)
    reviewer = get_user_model().objects.create_user(username="bench-moderator").pk
    decider = get_user_model().objects.create_user(username="bench-admin").pk
    params = {"items": decisions, "versions": versions, "reviewer": reviewer, "now": timezone.now()}
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in FILL_SQL:
            step = time.perf_counter()
            cursor.execute(sql, params)
            write(f"  {cursor.rowcount:>9,} rows in {time.perf_counter() - step:5.1f} s")
    scratch.vacuum_analyze()
    write(f"filled in {time.perf_counter() - started:.0f} s")
    automated = Classification.objects.filter(needs_review=False).order_by("item_id").values_list("item_id", flat=True)
    return list(automated), decider


def record_automated(item_ids: list[int], *, batch: int, write: Callable[[str], None]) -> None:
    """Record the model's own decisions as the webhook worker does: one call per reasoner batch."""
    from enforcement import automated

    timings, recorded = [], 0
    for start in range(0, len(item_ids), batch):
        started = time.perf_counter()
        recorded += automated.record_for_items(item_ids[start:start + batch])
        timings.append(time.perf_counter() - started)
    total = sum(timings)
    write(f"recorded {recorded:,} automated actions (with statements and audit events) in batches of {batch}: "
          f"{recorded / total:,.0f} per second; per batch p50 {statistics.median(timings) * 1000:.1f} ms, "
          f"max {max(timings) * 1000:.1f} ms")


def record_rest(decider: int, write: Callable[[str], None]) -> None:
    """Everything else the model decided, in one call (the fill's), then the complaints."""
    from console.models import Classification
    from enforcement import automated

    started = time.perf_counter()
    ids = list(Classification.objects.filter(needs_review=False, enforcement_action__isnull=True)
               .values_list("item_id", flat=True))
    for start in range(0, len(ids), 50_000):
        automated.record_for_items(ids[start:start + 50_000])
    with connection.cursor() as cursor:
        cursor.execute(APPEALS_SQL, {"decider": decider})
    scratch.vacuum_analyze()
    write(f"the rest of the model's decisions and the complaints in {time.perf_counter() - started:.0f} s")


def measure_report(runs: int, write: Callable[[str], None]) -> dict[str, float]:
    from enforcement import report
    from enforcement.models import Action

    today = timezone.localdate()
    periods = {"a year": (today - timedelta(days=366), today), "a month": (today - timedelta(days=60),
                                                                           today - timedelta(days=31))}
    out = {}
    for label, (since, until) in periods.items():
        timings = []
        for _ in range(runs):
            started = time.perf_counter()
            figures = report.build(since, until)
            timings.append(time.perf_counter() - started)
        out[label] = statistics.median(timings)
        write(f"report over {label} ({figures.decisions:,} decisions, {figures.appeals['decided']:,} complaints "
              f"decided): median {out[label] * 1000:,.0f} ms of {runs} runs")
    write(f"({Action.objects.count():,} actions in the database)")
    return out


def main(*, decisions: int = 1_000_000, record: int = 20_000, batch: int = 64, runs: int = 3, keep: bool = False,
         write: Callable[[str], None] = print) -> None:
    name = f"{settings.DATABASES['default']['NAME']}_bench_transparency"
    scratch.use_database(name, recreate=True)
    try:
        write(f"machine: {cpu_model()}; PostgreSQL on the same machine")
        automated_items, decider = fill(decisions, write)
        record_automated(automated_items[:record], batch=batch, write=write)
        record_rest(decider, write)
        measure_report(runs, write)
    finally:
        if keep:
            write(f"kept the scratch database {name}")
        else:
            scratch.drop_database(name)
