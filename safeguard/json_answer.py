"""Reading a JSON answer: keys violation, policy_category (or category / label), rule_ids, confidence,
rationale, in any spelling models use ("1", true, "yes"; "high" or 0.9).

Every field that carries a verdict is a signal; when signals disagree ({"violation": 0,
"policy_category": "SP2"}) the object is *conflicting*, which goes to a person. A category the policy
does not define is never a verdict on its own: with a violation flag it is dropped (the flag stands),
with a "no violation" flag it is a conflict.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from safeguard.decision_words import DecisionWords
from safeguard.labels import is_safe_label, match_category
from safeguard.specs import PolicySpec

CONFIDENCE_WORDS = {"high": 0.9, "medium": 0.6, "low": 0.3}
_TRUE_WORDS = frozenset({"1", "true", "yes", "y", "violation", "violating", "invalid", "unsafe"})
_FALSE_WORDS = frozenset({"0", "false", "no", "n", "safe", "valid", "no_violation", "none", "not_violating"})
_NO_CATEGORY = frozenset({"", "n/a", "na", "null", "none", "-", "no category"})
_VALIDITY_WORDS = ("INVALID", "VALID")
_RULE_SPLIT = re.compile(r"[,;\s]+")
_JSON_DECODER = json.JSONDecoder()


@dataclass(slots=True)
class JsonReading:
    violation: bool
    category: str = ""
    rule_ids: list[str] = field(default_factory=list)
    confidence: float | None = None
    rationale: str = ""
    conflict: str = ""
    notes: list[str] = field(default_factory=list)


def json_objects(text: str) -> list[tuple[int, int, dict[str, Any]]]:
    """Every top-level ``{...}`` in the text that parses as a JSON object, with its span."""
    found = []
    start = text.find("{")
    while start != -1:
        try:
            value, end = _JSON_DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):
            value, end = None, start + 1
        if isinstance(value, dict):
            found.append((start, end, value))
            start = text.find("{", end)
        else:
            start = text.find("{", start + 1)
    return found


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first ``{...}`` in the text that parses as a JSON object, or None."""
    found = json_objects(text)
    return found[0][2] if found else None


def _truth(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return True if value == 1 else False if value == 0 else None
    if isinstance(value, str):
        word = "_".join(value.strip().lower().split())
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


def confidence_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        word = value.strip().lower()
        if word in CONFIDENCE_WORDS:
            return CONFIDENCE_WORDS[word]
        try:
            value = float(word)
        except ValueError:
            return None
    if isinstance(value, int | float) and 0.0 <= float(value) <= 1.0:
        return float(value)
    return None


def _rule_ids(value: Any) -> list[str]:
    if isinstance(value, str):
        items: list[Any] = _RULE_SPLIT.split(value)
    elif isinstance(value, list | tuple):
        items = list(value)
    elif value is None:
        items = []
    else:
        items = [value]
    rules = []
    for item in items:
        text = str(item).strip().strip("\"'")
        if text and text.lower() not in _NO_CATEGORY and text not in rules:
            rules.append(text)
    return rules


def _scalar_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    if value is None or isinstance(value, dict | bool):
        return ""
    return str(value).strip()


def _pick(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in data:
            return data[key]
    return None


def _known(category: str, policy: PolicySpec) -> bool:
    return not policy.labels or category in policy.labels


def read_json(data: dict[str, Any], policy: PolicySpec, words: DecisionWords) -> JsonReading | None:
    """The verdict one JSON object holds, or None when it has no verdict field at all."""
    data = {str(key).strip().lower(): value for key, value in data.items()}
    signals: list[tuple[bool, str]] = []
    notes: list[str] = []
    explicit = _truth(_pick(data, "violation", "violates", "is_violation", "flagged", "unsafe"))
    if explicit is not None:
        signals.append((explicit, "violation"))
    rule_ids = _rule_ids(_pick(data, "rule_ids", "rule_id", "rules"))
    unknown: list[str] = []

    category = ""
    for key, raw in (
        ("policy_category", _scalar_text(_pick(data, "policy_category", "category"))),
        ("label", _scalar_text(_pick(data, "label", "decision", "verdict", "classification"))),
    ):
        if not raw or (raw.lower() in _NO_CATEGORY and raw not in policy.labels):
            continue
        if raw.upper() in _VALIDITY_WORDS:
            # VALID / INVALID are the verdict itself, not a policy category.
            signals.append((raw.upper() == "INVALID", key))
            continue
        if raw in ("0", "1") and raw not in policy.labels:
            signals.append((raw == "1", key))
            continue
        truth = _truth(raw)
        if truth is not None and raw not in policy.labels:
            signals.append((truth, key))
            continue
        found, rule = match_category(raw, policy.labels)
        if not _known(found, policy) or (not policy.labels and policy.label_scheme != "categories"):
            unknown.append(raw)
            continue
        if rule and rule not in rule_ids:
            rule_ids.insert(0, rule)
        if not category:
            category = found
        signals.append((not is_safe_label(found), key))
    if not category and rule_ids and (policy.labels or policy.label_scheme == "categories"):
        derived, _ = match_category(rule_ids[0], policy.labels)
        if _known(derived, policy):
            category = derived
            signals.append((not is_safe_label(category), "rule_ids"))
        elif policy.labels and words.is_relevant_code(derived):
            unknown.append(rule_ids[0])

    if not signals:
        return None
    values = {value for value, _ in signals}
    conflict = ""
    if len(values) > 1:
        said = ", ".join(f"{key}={'violation' if value else 'no violation'}" for value, key in signals)
        conflict = f"conflicting labels: the JSON fields disagree ({said})"
    violation = True in values
    if unknown:
        codes = ", ".join(unknown)
        if violation:
            notes.append(f"unknown code {codes} ignored")
        else:
            conflict = conflict or f"unknown code {codes} beside a 'no violation' answer"
    if category and is_safe_label(category) != (not violation):
        category = ""
    rationale = _pick(data, "rationale", "reason", "explanation", "justification")
    return JsonReading(
        violation=violation,
        category=category,
        rule_ids=rule_ids,
        confidence=confidence_value(data.get("confidence")),
        rationale=rationale.strip() if isinstance(rationale, str) else "",
        conflict=conflict,
        notes=notes,
    )
