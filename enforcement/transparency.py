"""The EU DSA Transparency Database's submission shape for statements of reasons.

Field names, enumerations and limits follow the database's API (POST /api/v1/statement for one,
POST /api/v1/statements for up to 100 at once), as its validation rules read in
digital-services-act/transparency-database (app/Services/GroupedSubmissionsService.php, multi_rules, and
StatementMultipleAPIController: 'statements' => required|array|between:1,100). No personal data leaves
here: no usernames, no content text, no external ids; the facts are the moderator-editable summary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from django.conf import settings

BATCH_SIZE = 100  # statements per submission to /api/v1/statements
FACTS_MAX = 5000  # decision_facts
GROUND_MAX = 500  # incompatible_content_ground, illegal_content_legal_ground, *_other, puid
EXPLANATION_MAX = 2000  # incompatible_content_explanation, illegal_content_explanation
PUID_PATTERN = re.compile(r"^[a-zA-Z0-9\-_]+$")

DECISION_VISIBILITY = {
    "label": "DECISION_VISIBILITY_CONTENT_LABELLED",
    "reduce_visibility": "DECISION_VISIBILITY_CONTENT_DEMOTED",
    "remove": "DECISION_VISIBILITY_CONTENT_REMOVED",
    "age_gate": "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
}
DECISION_VISIBILITIES = frozenset({
    "DECISION_VISIBILITY_CONTENT_REMOVED", "DECISION_VISIBILITY_CONTENT_DISABLED",
    "DECISION_VISIBILITY_CONTENT_DEMOTED", "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED",
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED", "DECISION_VISIBILITY_CONTENT_LABELLED",
    "DECISION_VISIBILITY_OTHER",
})
DECISION_ACCOUNTS = frozenset({"DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"})
DECISION_GROUND = {"incompatible_content": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
                   "illegal_content": "DECISION_GROUND_ILLEGAL_CONTENT"}
AUTOMATED_DECISION = {"fully": "AUTOMATED_DECISION_FULLY", "partially": "AUTOMATED_DECISION_PARTIALLY",
                      "not_automated": "AUTOMATED_DECISION_NOT_AUTOMATED"}
SOURCE_TYPE = {"voluntary": "SOURCE_VOLUNTARY", "article_16": "SOURCE_ARTICLE_16",
               "trusted_flagger": "SOURCE_TRUSTED_FLAGGER", "other_notification": "SOURCE_TYPE_OTHER_NOTIFICATION"}
CONTENT_TYPES = frozenset({
    "CONTENT_TYPE_APP", "CONTENT_TYPE_AUDIO", "CONTENT_TYPE_IMAGE", "CONTENT_TYPE_PRODUCT",
    "CONTENT_TYPE_SYNTHETIC_MEDIA", "CONTENT_TYPE_TEXT", "CONTENT_TYPE_VIDEO", "CONTENT_TYPE_OTHER",
})
# The categories of the database's current (second) taxonomy.
CATEGORIES = (
    "STATEMENT_CATEGORY_ANIMAL_WELFARE",
    "STATEMENT_CATEGORY_CONSUMER_INFORMATION",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE",
    "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN",
    "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS",
    "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH",
    "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS",
    "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS",
    "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE",
    "STATEMENT_CATEGORY_OTHER_VIOLATION_TC",
    "STATEMENT_CATEGORY_PROTECTION_OF_MINORS",
    "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
    "STATEMENT_CATEGORY_SCAMS_AND_FRAUD",
    "STATEMENT_CATEGORY_SELF_HARM",
    "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS",
    "STATEMENT_CATEGORY_VIOLENCE",
)
EU_COUNTRIES = ("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
                "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK")
EEA_COUNTRIES = frozenset({*EU_COUNTRIES, "IS", "LI", "NO"})
REQUIRED = ("decision_ground", "content_type", "category", "content_date", "application_date", "decision_facts",
            "source_type", "automated_detection", "automated_decision", "puid")


def cut(text: str, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def submission(statement: Any) -> dict[str, Any]:
    """One statement in the database's shape. `statement` is an enforcement Statement with its action."""
    action = statement.action
    out: dict[str, Any] = {
        "decision_ground": DECISION_GROUND[statement.decision_ground],
        "content_type": ["CONTENT_TYPE_TEXT"],  # every item is a message, completion or conversation
        "category": statement.category,
        "territorial_scope": list(settings.ENFORCEMENT_TERRITORIAL_SCOPE),
        "content_date": _day(statement.content_date),
        "application_date": _day(statement.application_date),
        "decision_facts": cut(statement.facts, FACTS_MAX),
        "source_type": SOURCE_TYPE[statement.source_type],
        "automated_detection": "Yes" if statement.automated_detection else "No",
        "automated_decision": AUTOMATED_DECISION[statement.automated_decision],
        "puid": str(statement.puid),
    }
    if action.action == "suspend_account":
        out["decision_account"] = "DECISION_ACCOUNT_SUSPENDED"
        out["end_date_account_restriction"] = _day(statement.end_date)
    else:
        out["decision_visibility"] = [DECISION_VISIBILITY[action.action]]
        out["end_date_visibility_restriction"] = _day(statement.end_date)
    if statement.decision_ground == "illegal_content":
        out["illegal_content_legal_ground"] = cut(statement.legal_ground, GROUND_MAX)
        out["illegal_content_explanation"] = cut(statement.facts, EXPLANATION_MAX)
    else:
        out["incompatible_content_ground"] = cut(statement.ground, GROUND_MAX)
        out["incompatible_content_explanation"] = cut(statement.facts, EXPLANATION_MAX)
        out["incompatible_content_illegal"] = "No"
    if settings.ENFORCEMENT_TERMS_URL:
        out["decision_ground_reference_url"] = settings.ENFORCEMENT_TERMS_URL[:GROUND_MAX]
    return out


def problems(payload: dict[str, Any]) -> list[str]:
    """What the database's validation would refuse in one submission ([] when none)."""
    found = [f"{name} is required" for name in REQUIRED if payload.get(name) in (None, "", [])]
    visibility, account = payload.get("decision_visibility") or [], payload.get("decision_account")
    if not visibility and not account and not payload.get("decision_monetary") and not payload.get(
            "decision_provision"):
        found.append("one of decision_visibility, decision_monetary, decision_provision, decision_account is required")
    found += [f"decision_visibility {v!r} is not allowed" for v in visibility if v not in DECISION_VISIBILITIES]
    if account and account not in DECISION_ACCOUNTS:
        found.append(f"decision_account {account!r} is not allowed")
    if payload.get("decision_ground") not in DECISION_GROUND.values():
        found.append("decision_ground is not allowed")
    if payload.get("decision_ground") == "DECISION_GROUND_ILLEGAL_CONTENT":
        for name in ("illegal_content_legal_ground", "illegal_content_explanation"):
            if not payload.get(name):
                found.append(f"{name} is required for illegal content")
    if payload.get("decision_ground") == "DECISION_GROUND_INCOMPATIBLE_CONTENT":
        for name in ("incompatible_content_ground", "incompatible_content_explanation"):
            if not payload.get(name):
                found.append(f"{name} is required for incompatible content")
    found += [f"content_type {v!r} is not allowed" for v in payload.get("content_type") or [] if v not in CONTENT_TYPES]
    if payload.get("category") not in CATEGORIES:
        found.append("category is not allowed")
    found += [f"territorial_scope {v!r} is not allowed" for v in payload.get("territorial_scope") or []
              if v not in EEA_COUNTRIES]
    if payload.get("source_type") not in SOURCE_TYPE.values():
        found.append("source_type is not allowed")
    if payload.get("automated_detection") not in ("Yes", "No"):
        found.append("automated_detection must be Yes or No")
    if payload.get("automated_decision") not in AUTOMATED_DECISION.values():
        found.append("automated_decision is not allowed")
    limits = {"decision_facts": FACTS_MAX, "incompatible_content_ground": GROUND_MAX,
              "illegal_content_legal_ground": GROUND_MAX, "incompatible_content_explanation": EXPLANATION_MAX,
              "illegal_content_explanation": EXPLANATION_MAX, "puid": GROUND_MAX,
              "decision_ground_reference_url": GROUND_MAX}
    found += [f"{name} is longer than {limit}" for name, limit in limits.items()
              if len(payload.get(name) or "") > limit]
    if not PUID_PATTERN.match(payload.get("puid") or ""):
        found.append("puid may hold only letters, digits, - and _")
    for name in ("content_date", "application_date", "end_date_visibility_restriction",
                 "end_date_account_restriction"):
        value = payload.get(name)
        if value:
            try:
                day = date.fromisoformat(value)
            except ValueError:
                found.append(f"{name} is not YYYY-MM-DD")
                continue
            low = date(2000, 1, 1) if name == "content_date" else date(2020, 1, 1)
            if day > date(2038, 1, 1) or (name in ("content_date", "application_date") and day < low):
                found.append(f"{name} is out of the allowed range")
    return found


def batches(payloads: Iterable[dict[str, Any]], size: int = BATCH_SIZE) -> Iterator[dict[str, Any]]:
    """Submissions of at most `size` statements each: {"statements": [...]}, the multiple endpoint's body."""
    batch: list[dict[str, Any]] = []
    for payload in payloads:
        batch.append(payload)
        if len(batch) == size:
            yield {"statements": batch}
            batch = []
    if batch:
        yield {"statements": batch}
