"""Actions for verdicts no person decided: the first pass's own closures and the reasoner's verdicts that
need no review. Each gets its Action (chosen as `rules.action_for` chooses, decided at the verdict's
`finished_at`) and, when it restricts, a Statement with automated detection and a fully automated
decision, so the statements and the transparency report count the automated decisions too.

A verdict is final without a person when it is done, has a verdict, needs no review, and is the item's
last word for its policy version: a first-pass result that handed the item to the reasoner is not (the
reasoner's row for the same item and version decides), nor is one sent to people (needs_review).

`record_for_items` is three statements per call, in one transaction: INSERT ... SELECT for the
actions, INSERT ... SELECT for the statements of those that restrict, and one INSERT for their audit
events (`record_many`). It is idempotent through the OneToOne on the classification, so it runs
wherever a batch of items may have closed, off the paths that close them: the webhook worker after each
reasoner batch (`api.deliveries.notify_decisions`) and after each ingestion batch the first pass closed
items of (`api.jobs.record_automated_actions`), and wherever a webhook payload is built
(`enforcement.actions.record_for_items`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.writer import Entry, record_many
from console.models import Classification, Item
from enforcement.models import Action, EnforcementRule, Statement
from enforcement.sources import SOURCE_ALIASES
from enforcement.transparency import CATEGORIES
from policies_app.models import Policy, PolicyVersion

ACTOR_NAME = "system:enforcement"
_WS = r"E' \t\n\r\f\v'"  # what Python's str.strip() strips, for btrim

# The rule lookup mirrors `rules.action_for`: the first of (category, label) the policy maps, else
# remove for a violation and none for a safe verdict (tests/enforcement/test_automated.py holds the two
# to the same answers). Both statements look it up the same way, by this one fragment.
_RULE = """
LEFT JOIN LATERAL (
    SELECT r.action, r.duration_days, r.category FROM {rule} AS r
    WHERE r.policy_id = pv.policy_id AND r.code <> '' AND r.code IN (c.category, c.label)
    ORDER BY r.code = c.category DESC
    LIMIT 1) AS rule ON true
"""

_ACTIONS_SQL = """
INSERT INTO {a} (classification_id, item_id, review_id, policy_version_id, decided_code, violation, action,
                 duration_days, decided_at, created_at, updated_at)
SELECT c.id, c.item_id, NULL, c.policy_version_id, left(COALESCE(NULLIF(c.category, ''), c.label), 60), c.violation,
       COALESCE(rule.action, CASE WHEN c.violation THEN 'remove' ELSE 'none' END),
       CASE WHEN rule.action <> 'none' THEN rule.duration_days END, c.finished_at, %(now)s, %(now)s
-- From the items asked about, by the (item, version, stage) index, whatever the table's statistics say:
-- OFFSET 0 keeps the planner from flattening the lateral subquery, which it would otherwise join by the
-- versions' far larger index ranges (83,000 rows a version read for 64 items, at a million).
FROM unnest(%(items)s::bigint[]) AS wanted(item_id)
CROSS JOIN LATERAL (SELECT * FROM {c} AS x WHERE x.item_id = wanted.item_id OFFSET 0) AS c
JOIN {pv} AS pv ON pv.id = c.policy_version_id
-- A join, not NOT EXISTS under the OR: that would be planned as a hashed scan of every reasoner row.
LEFT JOIN {c} AS later
    ON later.item_id = c.item_id AND later.policy_version_id = c.policy_version_id AND later.stage = 'reasoner'
{rule_lookup}
WHERE c.status = 'done' AND c.violation IS NOT NULL AND NOT c.needs_review
  AND c.finished_at IS NOT NULL AND (c.stage = 'reasoner' OR later.id IS NULL)
  AND NOT EXISTS (SELECT 1 FROM {a} AS a WHERE a.classification_id = c.id)
ORDER BY c.id
ON CONFLICT (classification_id) DO NOTHING
RETURNING id, classification_id, action, duration_days, decided_code
"""

# The statements of the restricting ones among the actions just recorded. The fields mirror
# `actions._statement_fields` for a decision with no review: the model's rationale as the facts, its
# cited rules as the ground.
_STATEMENTS_SQL = """
INSERT INTO {s} (action_id, puid, facts, decision_ground, ground, legal_ground, cited_rules, automated_detection,
                 automated_decision, source_type, category, application_date, content_date, end_date,
                 withdrawn_at, created_at, updated_at, edited_by_id)
SELECT a.id, gen_random_uuid(),
       COALESCE(NULLIF(btrim(c.rationale, {ws}), ''), 'Decided under ' || p.name || ' by the model.'),
       'incompatible_content',
       p.name || ', version ' || pv.number
           || CASE WHEN cardinality(cited.rules) > 0 THEN ', rules ' || array_to_string(cited.rules, ', ') ELSE '' END,
       '', to_jsonb(cited.rules), true, 'fully',
       COALESCE(%(sources)s::jsonb ->> btrim(CASE WHEN jsonb_typeof(i.metadata) = 'object'
                                                   THEN i.metadata ->> 'source_type' END, {ws}), 'voluntary'),
       CASE WHEN rule.category = ANY(%(categories)s) THEN rule.category ELSE %(default_category)s END,
       (a.decided_at AT TIME ZONE %(tz)s)::date, (i.created_at AT TIME ZONE %(tz)s)::date,
       ((a.decided_at + a.duration_days * interval '1 day') AT TIME ZONE 'UTC')::date,
       NULL, %(now)s, %(now)s, NULL
FROM {a} AS a
JOIN {c} AS c ON c.id = a.classification_id
JOIN {pv} AS pv ON pv.id = c.policy_version_id
JOIN {p} AS p ON p.id = pv.policy_id
JOIN {i} AS i ON i.id = c.item_id
{rule_lookup}
CROSS JOIN LATERAL (
    SELECT COALESCE(array_agg(t.rule ORDER BY t.n), '{}') AS rules
    FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(c.rule_ids) = 'array' THEN c.rule_ids
                                        ELSE '[]'::jsonb END) WITH ORDINALITY AS t(rule, n)) AS cited
WHERE a.id = ANY(%(actions)s::bigint[]) AND a.action <> 'none'
RETURNING action_id, puid
"""
_TABLES = {"{rule_lookup}": _RULE, "{ws}": _WS, "{c}": Classification._meta.db_table,
           "{pv}": PolicyVersion._meta.db_table, "{p}": Policy._meta.db_table, "{i}": Item._meta.db_table,
           "{a}": Action._meta.db_table, "{s}": Statement._meta.db_table, "{rule}": EnforcementRule._meta.db_table}


def _sql(template: str) -> str:
    for name, value in _TABLES.items():  # in order: the rule fragment first, then the tables inside it
        template = template.replace(name, value)
    return template


ACTIONS_SQL, STATEMENTS_SQL = _sql(_ACTIONS_SQL), _sql(_STATEMENTS_SQL)


def record_for_items(item_ids: Iterable[int]) -> int:
    """Record the action (and statement, and audit event) of every verdict of these items that is final
    without a person and has none yet; how many were recorded. Safe to repeat and to run concurrently."""
    ids = sorted({int(pk) for pk in item_ids})
    if not ids:
        return 0
    now = timezone.now()
    params = {
        "items": ids, "now": now, "tz": timezone.get_current_timezone_name(),
        "categories": list(CATEGORIES), "default_category": settings.ENFORCEMENT_TDB_CATEGORY,
        "sources": json.dumps({key: str(value) for key, value in SOURCE_ALIASES.items()}),
    }
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(ACTIONS_SQL, params)
            recorded = cursor.fetchall()
            if not recorded:
                return 0
            cursor.execute(STATEMENTS_SQL, {**params, "actions": [row[0] for row in recorded]})
            puids = dict(cursor.fetchall())
        # Last, just before the commit: the audit chain's head stays locked from a transaction's first
        # event to its commit, and every writer (the reasoner's too) waits on it meanwhile.
        record_many(actor=None, actor_name=ACTOR_NAME, object_type=Action, at=now, entries=[
            Entry(action="enforcement.action_recorded", object_id=str(pk), object_repr=f"{classification_id}: {action}",
                  after={"action": action, "duration_days": days, "code": code, "automated_decision": "fully",
                         **({"statement": str(puids[pk])} if pk in puids else {})})
            for pk, classification_id, action, days, code in recorded
        ])
    return len(recorded)
