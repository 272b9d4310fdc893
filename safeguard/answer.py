"""Reading the final-channel answer: bare 0/1, label words, or a JSON object.

Policies ask for one of three shapes, and models do not always keep to the one
asked for, so every shape is accepted whatever the policy's output_format:

* a bare ``0`` / ``1`` (optionally quoted, bolded, or followed by a rationale);
* a label word: the policy's own labels and rule IDs ("SP2", "SP2.a"), or
  VALID / INVALID, matched case-sensitively so that "valid" in prose is not a label;
* a JSON object (alone, in ``` fences, or with text around it: the first object
  that parses is used) with keys violation, policy_category, rule_ids, confidence
  and rationale.

When the signals in one answer disagree (``{"violation": 0, "policy_category":
"SP2"}``) the reading leans to violation: a wrong flag costs a reviewer a click,
a missed violation costs much more.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from safeguard.labels import is_safe_label, match_category
from safeguard.specs import PolicySpec

CONFIDENCE_WORDS = {"high": 0.9, "medium": 0.6, "low": 0.3}
_TRUE_WORDS = frozenset({"1", "true", "yes", "y", "violation", "violating", "invalid"})
_FALSE_WORDS = frozenset({"0", "false", "no", "n", "safe", "valid", "no_violation", "none"})
_NO_CATEGORY = frozenset({"", "n/a", "na", "null", "none", "-", "no category"})
_VALIDITY_WORDS = ("INVALID", "VALID")

_PREFIX = re.compile(
    r"[*_`\s]*(?:final\s+answer|answer|verdict|label|output|classification|result|violation)[*_`\s]*[:=][*_`\s]*",
    re.IGNORECASE,
)
# "1", "**0**", "1.", "1 - spam", "0\nrationale", but not "0.5" or "10".
_BARE_DIGIT = re.compile(r"[*`'\"\s]*([01])[*`'\"]*(?:\.?(?:$|(?=\s))|(?=[:;,)\-–—]))(.*)", re.DOTALL)
_LEADING_NOISE = re.compile(r"^[\s:;,.\-–—)*`'\"]+")
_RULE_SPLIT = re.compile(r"[,;\s]+")
_GENERIC_CODE = r"[A-Z]{1,8}\d+"
_JSON_DECODER = json.JSONDecoder()


@dataclass(slots=True)
class Answer:
    violation: bool
    category: str = ""
    rule_ids: list[str] = field(default_factory=list)
    confidence: float | None = None
    rationale: str = ""


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first ``{...}`` in the text that parses as a JSON object, or None."""
    start = text.find("{")
    while start != -1:
        try:
            value, _ = _JSON_DECODER.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


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


def _confidence(value: Any) -> float | None:
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


def _from_json(data: dict[str, Any], policy: PolicySpec) -> Answer | None:
    data = {str(key).strip().lower(): value for key, value in data.items()}
    signals: list[bool] = []
    explicit = _truth(_pick(data, "violation", "violates", "is_violation"))
    if explicit is not None:
        signals.append(explicit)
    rule_ids = _rule_ids(_pick(data, "rule_ids", "rule_id", "rules"))

    category = ""
    for raw in (_scalar_text(_pick(data, "policy_category", "category")), _scalar_text(data.get("label"))):
        if not raw or (raw.lower() in _NO_CATEGORY and raw not in policy.labels):
            continue
        if raw.upper() in _VALIDITY_WORDS:
            # VALID / INVALID are the verdict itself, not a policy category.
            signals.append(raw.upper() == "INVALID")
            continue
        if raw in ("0", "1") and raw not in policy.labels:
            signals.append(raw == "1")
            continue
        if not category:
            category, rule = match_category(raw, policy.labels)
            if rule and rule not in rule_ids:
                rule_ids.insert(0, rule)
            signals.append(not is_safe_label(category))
    if not category and rule_ids and (policy.labels or policy.label_scheme == "categories"):
        derived, _ = match_category(rule_ids[0], policy.labels)
        if not policy.labels or derived in policy.labels:
            category = derived
            signals.append(not is_safe_label(category))

    if not signals:
        return None
    rationale = _pick(data, "rationale", "reason", "explanation", "justification")
    return Answer(
        violation=any(signals),
        category=category,
        rule_ids=rule_ids,
        confidence=_confidence(data.get("confidence")),
        rationale=rationale.strip() if isinstance(rationale, str) else "",
    )


@functools.lru_cache(maxsize=256)
def _label_pattern(labels: tuple[str, ...], generic_codes: bool) -> re.Pattern[str]:
    words = sorted({*labels, *_VALIDITY_WORDS}, key=len, reverse=True)
    alternatives = [re.escape(word) for word in words if word]
    if generic_codes:
        alternatives.append(_GENERIC_CODE)
    return re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(alternatives) + r")((?:[.\-][A-Za-z0-9]+)*)(?![A-Za-z0-9_])")


def _from_label_words(text: str, policy: PolicySpec) -> Answer | None:
    pattern = _label_pattern(policy.labels, policy.label_scheme == "categories" and not policy.labels)
    first = pattern.search(text)
    if first is None:
        # A lone lower-case label ("invalid") is still unambiguous.
        line = text.strip().strip("*`'\".").strip()
        for word in (*policy.labels, *_VALIDITY_WORDS):
            if line.lower() == word.lower():
                return _from_label_words(word, policy)
        return None
    word, suffix = first.group(1), first.group(2)
    rule_ids: list[str] = []
    if word in _VALIDITY_WORDS:
        violation, category = word == "INVALID", ""
    else:
        category, rule = match_category(word + suffix, policy.labels)
        violation = not is_safe_label(category)
        if rule:
            rule_ids.append(rule)
        for other in pattern.finditer(text, first.end()):
            more_category, more_rule = match_category(other.group(1) + other.group(2), policy.labels)
            if more_rule and more_category == category and more_rule not in rule_ids:
                rule_ids.append(more_rule)
    before = text[: first.start()].strip(" \t\n*`'\"")
    rationale = text[first.end() :] if not before else text
    return Answer(violation=violation, category=category, rule_ids=rule_ids, rationale=_clean_rationale(rationale))


def _clean_rationale(text: str) -> str:
    return _LEADING_NOISE.sub("", text).strip()


def read_answer(final: str, policy: PolicySpec) -> Answer | None:
    """Read a final-channel answer, or None when nothing in it is a verdict."""
    text = final.strip()
    if not text:
        return None
    if "{" in text:
        data = first_json_object(text)
        if data is not None:
            # A JSON answer without any verdict field is unreadable; scanning its
            # rationale for label words would be guessing.
            return _from_json(data, policy)
    prefix = _PREFIX.match(text)
    if prefix:
        text = text[prefix.end() :]
    bare = _BARE_DIGIT.match(text)
    digit_categories = policy.label_scheme == "categories" and bool({"0", "1"} & set(policy.labels))
    if bare and not digit_categories:
        return Answer(violation=bare.group(1) == "1", rationale=_clean_rationale(bare.group(2)))
    return _from_label_words(text, policy)
