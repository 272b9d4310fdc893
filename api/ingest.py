"""Ingestion: the API's way in. `ingest` stores a batch of items (through the console's intake, so they
are audited and announced to open queue pages), scores each with its policies' first pass (the built-in
model, or an external endpoint where the policy has one: `api.external_first_pass`), records
the route, and writes the fast verdicts and the reasoner's queued work in one INSERT per table."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from api import deliveries, external_first_pass, item_states, routing, schedule
from api.models import ApiClient, Route, RouteChoice
from console import intake, wakeup
from console.bulk_insert import bulk_insert
from console.models import Classification, ClassificationStatus, Stage
from evaluations import shadow
from policies_app.models import PolicyVersion
from safeguard.labels import canonical_label


@dataclass(slots=True)
class Submission:
    """One item to ingest: `data` is `console.intake.clean_item_input` output; `versions` the
    published policy versions (with .policy loaded) to route it under."""

    data: dict[str, Any]
    versions: list[PolicyVersion]


# QC sampling needs no cryptographic randomness: one generator per process, seeded from the OS.
_random = random.Random()


@transaction.atomic
def ingest(*, client: ApiClient, submissions: list[Submission], rng: random.Random | None = None
           ) -> list[dict[str, Any]]:
    """Store a batch of items for `client`, score and route each under each of its policy versions.

    All or nothing (one transaction); idempotent on (source, external id): a repeat returns the stored
    item's state, with "created": false, and routes nothing. Returns each item's state, in order.
    """
    rng = rng or _random
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")  # what every auto_now field of this transaction holds
        (now,) = cursor.fetchone()
    texts = [routing.item_text(s.data["kind"], s.data["content"], s.data["turns"]) for s in submissions]
    versions = {v.id: v for s in submissions for v in s.versions}
    thresholds = routing.thresholds_for(versions.values())
    models = routing.models_for(versions.values(), thresholds)
    # A policy with an external first pass is scored there instead (its failures go to the reasoner).
    externals = external_first_pass.active_endpoints({v.policy_id for v in versions.values()})
    members: dict[int, list[int]] = defaultdict(list)
    for index, submission in enumerate(submissions):
        for version in submission.versions:
            members[version.id].append(index)
    routed: dict[tuple[int, int], routing.Routed] = {}
    for version_id, indexes in members.items():
        version = versions[version_id]
        chosen = [texts[i] for i in indexes]
        if version.policy_id in externals:
            results = external_first_pass.route_external(externals[version.policy_id], chosen,
                                                         thresholds[version_id], rng)
        else:
            results = routing.route_texts(version, chosen, thresholds[version_id], models.get(version_id), rng)
        routed.update({(i, version_id): r for i, r in zip(indexes, results, strict=True)})

    audit_after = [
        {
            "client": client.name,
            "routes": {
                f"{v.policy.slug} v{v.number}": _audited_route(routed[(i, v.id)]) for v in s.versions
            },
        }
        for i, s in enumerate(submissions)
    ]
    stored = intake.create_items_bulk(actor=None, actor_name=f"api:{client.source}",
                                      items=[s.data for s in submissions], audit_after=audit_after)
    created = [i for i, (_, was_created) in enumerate(stored) if was_created]
    pairs = [(i, v) for i in created for v in submissions[i].versions]
    route_rows = [routed[(i, v.id)] for i, v in pairs]
    # The fast stage's label in each policy's own scheme: (violation label, safe label).
    labels = {v.id: (canonical_label(spec, True, ""), canonical_label(spec, False, ""))
              for v in versions.values() for spec in [v.as_spec()]}
    if pairs:
        bulk_insert(Route, {
            "item_id": [stored[i][0] for i, _ in pairs],
            "policy_version_id": [v.id for _, v in pairs],
            "route": [r.route for r in route_rows],
            "score": [r.score for r in route_rows],
            "model_id": [r.model_id for r in route_rows],
            "note": [r.note for r in route_rows],
            "qc_targeted": [r.qc_targeted for r in route_rows],
        })
    # One INSERT for both stages: the fast verdict (done) wherever a model scored the item, and the
    # reasoner's work (queued) wherever the route is the reasoner.
    stage_rows: list[tuple[Any, ...]] = []
    for (i, version), r in zip(pairs, route_rows, strict=True):
        item_id = stored[i][0]
        if r.score is not None:
            violation = r.score >= 0.5
            # People see quality-check samples and confident violations routed to them.
            stage_rows.append((item_id, version.id, Stage.FAST, ClassificationStatus.DONE,
                               _fast_label(r, labels[version.id]), _fast_category(r), violation, r.score,
                               r.scorer or f"first-pass #{r.model_id}",
                               r.route in (RouteChoice.QC_SAMPLE, RouteChoice.HUMAN), now))
        if r.route == RouteChoice.REASONER:
            stage_rows.append((item_id, version.id, Stage.REASONER, ClassificationStatus.QUEUED, "", "", None, None,
                               "", False, None))
    if stage_rows:
        names = ("item_id", "policy_version_id", "stage", "status", "label", "category", "violation", "confidence",
                 "model_name", "needs_review", "finished_at")
        bulk_insert(Classification, dict(zip(names, map(list, zip(*stage_rows, strict=True)), strict=True)))
    if any(row[2] == Stage.REASONER for row in stage_rows):
        transaction.on_commit(wakeup.wake_reasoner)
    # What the first pass closed on its own is decided now; the webhook worker records its enforcement
    # actions once this commits, off the request path (here they cost about a third of a routed batch's
    # time, inside the audit chain's lock: bench/README.md).
    deliveries.record_actions_later(
        {stored[i][0] for (i, _), r in zip(pairs, route_rows, strict=True) if r.route == RouteChoice.CLOSED})
    # A draft in shadow mode classifies its share of these items too, without routing or deciding anything.
    shadow.sample_items(((stored[i][0], v.policy_id) for i, v in pairs), now=now)
    transaction.on_commit(schedule.ensure_scheduled)
    return _states(submissions, stored, routed, labels, now)


def _audited_route(r: routing.Routed) -> dict[str, Any]:
    return {"route": r.route, "score": r.score, **({"note": r.note} if r.note else {})}


def _fast_label(r: routing.Routed, labels: tuple[str, str]) -> str:
    """The fast verdict's label: the mapped category of an external first pass's violation, else the
    policy's own violation or safe label."""
    assert r.score is not None
    return (_fast_category(r) or labels[0]) if r.score >= 0.5 else labels[1]


def _fast_category(r: routing.Routed) -> str:
    return r.category if r.score is not None and r.score >= 0.5 else ""


def _states(submissions: list[Submission], stored: list[tuple[int, bool]],
            routed: dict[tuple[int, int], routing.Routed], labels: dict[int, tuple[str, str]], now: Any
            ) -> list[dict[str, Any]]:
    """Each item's state: built from what was just written for new items, loaded for repeats."""
    existing = item_states.item_states({pk for pk, created in stored if not created})
    return [
        {**(_fresh(index, submission, pk, routed, labels, now) if created else existing[pk]), "created": created}
        for index, (submission, (pk, created)) in enumerate(zip(submissions, stored, strict=True))
    ]


def _fresh(index: int, submission: Submission, pk: int, routed: dict[tuple[int, int], routing.Routed],
           labels: dict[int, tuple[str, str]], now: Any) -> dict[str, Any]:
    policies = []
    for version in sorted(submission.versions, key=lambda v: (v.policy.slug, v.id)):
        r = routed[(index, version.id)]
        rows = []
        if r.score is not None:
            rows.append({"id": 0, "stage": Stage.FAST, "status": ClassificationStatus.DONE,
                         "label": _fast_label(r, labels[version.id]), "violation": r.score >= 0.5,
                         "category": _fast_category(r), "rule_ids": [], "confidence": r.score, "rationale": "",
                         "needs_review": r.route in (RouteChoice.QC_SAMPLE, RouteChoice.HUMAN), "finished_at": now})
        if r.route == RouteChoice.REASONER:
            rows.append({"id": 0, "stage": Stage.REASONER, "status": ClassificationStatus.QUEUED, "label": "",
                         "violation": None, "category": "", "rule_ids": [], "confidence": None, "rationale": "",
                         "needs_review": False, "finished_at": None})
        policies.append(item_states.policy_state(
            {"slug": version.policy.slug, "number": version.number},
            {"route": r.route, "score": r.score, "created_at": now}, rows, [],
        ))
    data = submission.data
    item = {"id": pk, "source": data["source"], "external_id": data["external_id"], "kind": data["kind"],
            "created_at": now}
    return item_states.item_state(item, policies)
