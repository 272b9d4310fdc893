"""An item's state as the API, webhooks and /v1/moderations report it.

Per policy version the decision is, in order of authority:

* a moderator's review (approve: the reviewed verdict stands; override: the corrected label decides;
  escalate: still in review);
* the first pass, when it closed the item (closed or qc_sample: not a violation);
* the reasoner's verdict, when it needs no human (done and not needs_review);
* otherwise the policy is pending (reasoner still working) or in_review (people must look).

The item is decided when every policy is; it is flagged when any policy found a violation.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from api.models import Route, RouteChoice
from console.models import Classification, ClassificationStatus, Decision, Item, Review, Stage, decided_violation
from policies_app.models import PolicyVersion

PENDING = "pending"
IN_REVIEW = "in_review"
DECIDED = "decided"

CLASSIFICATION_FIELDS = ("id", "item_id", "policy_version_id", "stage", "status", "label", "violation", "category",
                         "rule_ids", "confidence", "rationale", "parse_quality", "needs_review", "finished_at")
ROUTE_FIELDS = ("item_id", "policy_version_id", "route", "score", "created_at")
REVIEW_FIELDS = ("classification_id", "decision", "label", "category", "created_at")
RUNNING_STATES = (ClassificationStatus.QUEUED, ClassificationStatus.RUNNING)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _verdict(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "stage": row["stage"],
        "status": row["status"],
        "label": row["label"],
        "violation": row["violation"],
        "category": row["category"],
        "rule_ids": row["rule_ids"],
        "confidence": row["confidence"],
        "rationale": row["rationale"],
        "parse_quality": row.get("parse_quality") or None,
        "finished_at": iso(row["finished_at"]),
    }


def policy_state(
    version: dict[str, Any],
    route: dict[str, Any] | None,
    classifications: list[dict[str, Any]],
    reviews: list[dict[str, Any]],
) -> dict[str, Any]:
    """The state of one (item, policy version): see the module docstring. `reviews` oldest first."""
    by_stage = {row["stage"]: row for row in classifications}
    fast, reasoner = by_stage.get(Stage.FAST), by_stage.get(Stage.REASONER)
    status, flagged, decided_by, decided_at = PENDING, None, None, None
    review = reviews[-1] if reviews else None
    if review is not None and review["decision"] != Decision.ESCALATE:
        reviewed = next((row for row in classifications if row["id"] == review["classification_id"]), None)
        flagged = decided_violation(review["decision"], review["label"], review["category"],
                                    reviewed["violation"] if reviewed else None)
        if flagged is not None:
            status, decided_by, decided_at = DECIDED, "moderator", review["created_at"]
        else:  # approving a verdict that has no answer decides nothing
            status = IN_REVIEW
    elif review is not None:
        status = IN_REVIEW
    elif route is not None and route["route"] in (RouteChoice.CLOSED, RouteChoice.QC_SAMPLE):
        status, flagged, decided_by, decided_at = DECIDED, False, "first_pass", route["created_at"]
    elif route is not None and route["route"] == RouteChoice.HUMAN:
        status = IN_REVIEW
    elif reasoner is not None:
        if reasoner["status"] in RUNNING_STATES:
            status = PENDING
        elif reasoner["status"] == ClassificationStatus.DONE and not reasoner["needs_review"]:
            status, flagged, decided_by, decided_at = DECIDED, bool(reasoner["violation"]), "reasoner", \
                reasoner["finished_at"]
        else:
            status = IN_REVIEW
    elif fast is not None and fast["needs_review"]:
        status = IN_REVIEW
    return {
        "policy": version["slug"],
        "version": version["number"],
        "route": route["route"] if route else None,
        "score": route["score"] if route else None,
        "status": status,
        "flagged": flagged,
        "decided_by": decided_by,
        "decided_at": iso(decided_at),
        "verdicts": [_verdict(row) for row in (fast, reasoner) if row is not None],
        "review": (
            {"decision": review["decision"], "label": review["label"], "category": review["category"],
             "created_at": iso(review["created_at"])}
            if review else None
        ),
    }


def item_state(item: dict[str, Any], policies: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole item: its fields, overall status and decision, and each policy's state."""
    statuses = {p["status"] for p in policies}
    if not policies or PENDING in statuses:
        status = PENDING
    elif IN_REVIEW in statuses:
        status = IN_REVIEW
    else:
        status = DECIDED
    decision = None
    if status == DECIDED:
        decision = {
            "flagged": any(p["flagged"] for p in policies),
            "flagged_policies": [p["policy"] for p in policies if p["flagged"]],
            "decided_at": max(p["decided_at"] for p in policies),
        }
    return {
        "object": "item",
        "id": item["id"],
        "source": item["source"],
        "external_id": item["external_id"],
        "kind": item["kind"],
        "created_at": iso(item["created_at"]),
        "status": status,
        "decision": decision,
        "policies": policies,
    }


def version_rows(version_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    return {
        row["id"]: {"id": row["id"], "number": row["number"], "slug": row["policy__slug"]}
        for row in PolicyVersion.objects.filter(id__in=set(version_ids)).values("id", "number", "policy__slug")
    }


def item_states(item_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The state of each item, in five queries whatever their number."""
    ids = list(set(item_ids))
    if not ids:
        return {}
    items = Item.objects.filter(id__in=ids).values("id", "source", "external_id", "kind", "created_at")
    routes = {(r["item_id"], r["policy_version_id"]): r
              for r in Route.objects.filter(item_id__in=ids).values(*ROUTE_FIELDS)}
    classifications: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    item_of: dict[int, tuple[int, int]] = {}
    for row in Classification.objects.filter(item_id__in=ids).values(*CLASSIFICATION_FIELDS):
        key = (row["item_id"], row["policy_version_id"])
        classifications[key].append(row)
        item_of[row["id"]] = key
    reviews: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for row in Review.objects.filter(classification_id__in=list(item_of)).order_by("created_at", "id").values(
        *REVIEW_FIELDS
    ):
        reviews[item_of[row["classification_id"]]].append(row)
    versions = version_rows({key[1] for key in routes} | {key[1] for key in classifications})
    keys_of: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for key in [*routes, *classifications]:
        keys_of[key[0]].add(key)
    out = {}
    for item in items:
        keys = sorted(keys_of[item["id"]], key=lambda key: (versions[key[1]]["slug"], key[1]))
        policies = [policy_state(versions[key[1]], routes.get(key), classifications.get(key, []),
                                 reviews.get(key, [])) for key in keys]
        out[item["id"]] = item_state(item, policies)
    return out


def unsettled(item_ids: Iterable[int]) -> bool:
    """Whether any of these items still has reasoner work queued or running (cheap; for ?wait=)."""
    return Classification.objects.filter(item_id__in=list(item_ids), status__in=RUNNING_STATES).exists()


def decision_key(state: dict[str, Any]) -> str:
    """A fingerprint of a decided item's outcome: the same outcome is told to the platform once."""
    outcome = [[p["policy"], p["version"], p["flagged"]] for p in state["policies"]]
    return hashlib.sha256(json.dumps([state["status"], outcome]).encode()).hexdigest()
