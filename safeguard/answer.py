"""Reading the final-channel answer: what the model decided, and how sure we are of the reading.

Policies ask for a bare 0 / 1, a label word or code ("INVALID", "DC2", "SP2.a"), or a JSON object,
and models do not always keep to the shape asked for, so every shape is read whatever the policy's
output_format. The reading goes:

1. JSON objects anywhere in the answer are read field by field (json_answer.py);
2. the rest is cleaned of markdown and of what merely repeats the instruction (echoes.py);
3. the decision is the last group of tokens after a decision prefix, else the last group that starts
   a line, else the tokens of the prose when they all agree (mentions.py);
4. everything else the answer says is checked against that decision.

The rule that matters: **a reading is "safe" only when the answer clearly says safe.** Labels that
disagree anywhere outside the echoed instruction make the answer *conflicting*; so does a "safe"
answer whose reasoning concluded "violation" (reasoning_check.py). Unknown codes, refusals, chat that
skips the task, and answers with only negated or hedged labels are *unparsable*. Both go to a person
with the reason recorded; neither is ever read as safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from safeguard.decision_words import DecisionWords, Meaning, words_for
from safeguard.echoes import Cleaned, clean_answer
from safeguard.json_answer import confidence_value, json_objects, read_json
from safeguard.mentions import Found, Group, Mention, find_mentions
from safeguard.reasoning_check import analysis_concludes_violation
from safeguard.specs import PolicySpec

_LEADING_NOISE = re.compile(r"^[\s:;,.\-–—)*`'\"+=>→]+")
_CONFIDENCE_LINE = re.compile(
    r"^[\W_]*confidence[\W_]*(?:level)?\s*[:=\-]?\s*(high|medium|low|0?\.\d+|1(?:\.0+)?|0)\b.*$",
    re.IGNORECASE | re.MULTILINE,
)
_JSON_START = re.compile(r"\{\s*\"[A-Za-z_ ]+\"\s*:")
_REFUSAL = re.compile(
    r"\b(?:i'?m\s+sorry|i\s+am\s+sorry|i\s+apologi[sz]e|i\s+can(?:no|')?t\s+(?:help|assist|comply|provide|do\s+that|"
    r"classify|evaluate)|i\s+(?:won'?t|will\s+not)\s+(?:help|assist|classify)|unable\s+to\s+(?:help|assist|"
    r"comply|classify)|as\s+an\s+ai\b)",
    re.IGNORECASE,
)


@dataclass(slots=True)
class Answer:
    violation: bool
    category: str = ""
    rule_ids: list[str] = field(default_factory=list)
    confidence: float | None = None
    rationale: str = ""


@dataclass(slots=True)
class Reading:
    """How an answer was read. `answer` is set only for "clean" and "recovered" readings."""

    quality: str
    answer: Answer | None = None
    reason: str = ""  # why a reading is conflicting or unparsable
    notes: list[str] = field(default_factory=list)  # what was done to recover a reading


def _conflicting(reason: str, notes: list[str]) -> Reading:
    return Reading(quality="conflicting", reason=reason, notes=notes)


def _unparsable(reason: str, notes: list[str]) -> Reading:
    return Reading(quality="unparsable", reason=reason, notes=notes)


@dataclass(slots=True)
class _GroupMeaning:
    violation: bool | None
    category: str = ""
    rules: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    conflict: str = ""
    by_axis: dict[str, set[bool]] = field(default_factory=dict)


def _said(mentions: list[Mention]) -> str:
    return " and ".join(dict.fromkeys(m.token for m in mentions))


def _group_meaning(group: Group) -> _GroupMeaning:
    by_axis: dict[str, set[bool]] = {}
    unknown = [m.token for m in group.mentions if not m.meaning.known]
    known = [m for m in group.mentions if m.meaning.known and m.meaning.violation is not None]
    for mention in known:
        by_axis.setdefault(mention.axis, set()).add(bool(mention.meaning.violation))
    result = _GroupMeaning(violation=None, unknown=unknown, by_axis=by_axis)
    if any(len(values) > 1 for values in by_axis.values()):
        result.conflict = f"conflicting labels: the answer says {_said(known)}"
        return result
    if not known:
        return result
    result.violation = any(True in values for values in by_axis.values())
    if unknown and not result.violation:
        result.conflict = f"unknown code {', '.join(unknown)} beside a 'no violation' label"
        return result
    for mention in known:
        if mention.meaning.category and mention.meaning.violation == result.violation:
            if not result.category:
                result.category = mention.meaning.category
            if mention.meaning.rule and mention.meaning.category == result.category:
                result.rules.append(mention.meaning.rule)
    result.rules = list(dict.fromkeys(result.rules))
    return result


def _mention_violates(meaning: Meaning) -> bool:
    # An unknown code may be anything: it never supports "safe".
    return meaning.violation is not False


def _others_disagree(violation: bool, found: Found, groups: list[tuple[Group, _GroupMeaning]],
                     primary: Group | None, possible: list[Meaning]) -> str:
    """Why the rest of the answer contradicts `violation` ("" when it does not); `groups` are the
    answer's decision groups with their meanings."""
    axes: dict[str, set[bool]] = {}
    decided: list[Mention] = []
    for group, meaning in groups:
        if meaning.conflict:
            return meaning.conflict
        if meaning.violation is None:
            if meaning.unknown and not violation:
                return f"unknown code {', '.join(meaning.unknown)} in a 'no violation' answer"
            continue
        decided += group.mentions
        for axis, values in meaning.by_axis.items():
            axes.setdefault(axis, set()).update(values)
    if any(len(values) > 1 for values in axes.values()):
        return f"conflicting labels: the answer says {_said(decided)}"
    # When JSON was the decision (no primary group), every text decision must agree with it.
    if primary is None and any(m.violation is not None and m.violation != violation for _, m in groups):
        return f"conflicting labels: the JSON and the text ({_said(decided)}) disagree"
    decision = _said(primary.mentions) if primary is not None else "its JSON verdict"
    for mention in found.prose:
        if mention.negated:
            continue
        if not violation and _mention_violates(mention.meaning):
            return f"conflicting labels: the answer says {decision} (safe) and also {mention.token}"
        if violation and mention.meaning.violation is False and not mention.hedged and not mention.axis:
            return f"conflicting labels: the answer says {decision} (a violation) and also {mention.token}"
    if not violation and possible:
        return "conflicting labels: a line copied from the policy names " + ", ".join(
            dict.fromkeys(m.category or ("INVALID" if m.violation else "?") for m in possible)
        )
    return ""


def _rationale(text: str, primary: Group | None) -> str:
    if primary is None:
        body = text
    else:
        lines = text.split("\n")
        after = text[primary.end : primary.line_end]
        lines[primary.line] = after
        body = "\n".join(line for number, line in enumerate(lines) if number >= primary.line or line.strip())
    body = _CONFIDENCE_LINE.sub("", body)
    parts = [line.strip() for line in body.split("\n")]
    joined = "\n".join(part for part in parts if part and re.search(r"[A-Za-z0-9]", part))
    return _LEADING_NOISE.sub("", joined).strip()


def _text_confidence(text: str) -> float | None:
    match = _CONFIDENCE_LINE.search(text)
    return confidence_value(match.group(1)) if match else None


def _read_text(text: str, found: Found, possible: list[Meaning], notes: list[str]) -> Reading:
    meanings = [(group, _group_meaning(group)) for group in found.groups]
    decisive = [(g, m) for g, m in meanings if m.violation is not None or m.conflict]
    prefixed = [(g, m) for g, m in decisive if g.prefixed]
    chosen = prefixed[-1] if prefixed else decisive[-1] if decisive else None
    if chosen is None:
        unknown = [code for _, m in meanings for code in m.unknown]
        unknown += [m.token for m in found.prose if not m.meaning.known and not m.negated]
        return _read_prose(text, found, possible, notes, unknown)
    primary, meaning = chosen
    if meaning.conflict:
        return _conflicting(meaning.conflict, notes)
    assert meaning.violation is not None
    disagreement = _others_disagree(meaning.violation, found, meanings, primary, possible)
    if disagreement:
        return _conflicting(disagreement, notes)
    if meaning.unknown:
        notes.append(f"unknown code {', '.join(meaning.unknown)} ignored")
    if primary.prefixed:
        notes.append("decision read after a prefix")
    if len(decisive) > 1:
        notes.append("several decision lines agree")
    elif primary is not found.groups[0] or re.search(r"[^\W_]", text[: primary.mentions[0].start]):
        notes.append("decision read after other text")
    category, rules = meaning.category, meaning.rules
    if not category:
        # "INVALID" on one line and "Code: DC2" on the next: the agreeing lines give the category.
        for _, other in reversed(decisive):
            if other.category:
                category, rules = other.category, other.rules
                break
    answer = Answer(
        violation=meaning.violation,
        category=category,
        rule_ids=rules,
        confidence=_text_confidence(text),
        rationale=_rationale(text, primary),
    )
    return Reading(quality="recovered" if notes else "clean", answer=answer, notes=notes)


def _read_prose(text: str, found: Found, possible: list[Meaning], notes: list[str], unknown: list[str]) -> Reading:
    live = [m for m in found.prose if not m.negated and m.meaning.known]
    violating = [m for m in live if m.meaning.violation]
    safe = [m for m in live if m.meaning.violation is False and not m.hedged]
    if violating and safe:
        return _conflicting(f"conflicting labels: the answer says {_said(safe + violating)}", notes)
    if violating or (safe and not unknown and not possible):
        picked = violating or safe
        category = next((m.meaning.category for m in picked if m.meaning.category), "")
        rules = list(dict.fromkeys(m.meaning.rule for m in picked if m.meaning.rule))
        notes.append("decision read from the prose")
        answer = Answer(
            violation=bool(violating),
            category=category,
            rule_ids=rules,
            confidence=_text_confidence(text),
            rationale=_rationale(text, None),
        )
        return Reading(quality="recovered", answer=answer, notes=notes)
    if safe and possible:
        return _conflicting("conflicting labels: a line copied from the policy names a violation", notes)
    if unknown:
        return _unparsable(f"unknown code {', '.join(dict.fromkeys(unknown))}: the policy does not define it", notes)
    if _REFUSAL.search(text):
        return _unparsable("the model refused to classify", notes)
    if found.prose:
        return _unparsable("the answer names labels only negated or hedged, with no decision", notes)
    if notes and any("echoed" in note or "copied" in note or "definitions" in note for note in notes):
        return _unparsable("the answer only repeats the instruction, with no decision", notes)
    return _unparsable("the answer holds no decision", notes)


def read_answer(final: str, policy: PolicySpec, analysis: str = "") -> Reading:
    """Read a final-channel answer (and check it against the analysis channel's conclusion)."""
    text = final.strip()
    if not text:
        return _unparsable("the final answer is empty", [])
    words = words_for(policy)
    objects = json_objects(text) if "{" in text else []
    outside = text
    for start, end, _ in reversed(objects):
        outside = outside[:start] + " " * (end - start) + outside[end:]
    if outside.strip():
        cleaned = clean_answer(outside, words)
        found = find_mentions(cleaned.text, words)
    else:
        cleaned, found = Cleaned(text=""), Found()  # a bare JSON object: nothing around it to read
    notes = list(cleaned.notes)

    if not objects and _JSON_START.search(text):
        # Half a JSON object may have said more ('{"violation": 0, "policy_category": "SP3'): unreadable.
        return _unparsable("the answer holds JSON that does not parse", notes)
    if objects:
        reading = _read_json_answer(text, objects, policy, words, found, cleaned.possible, notes)
    else:
        reading = _read_text(cleaned.text, found, cleaned.possible, notes)
    if reading.answer is not None and not reading.answer.violation:
        concluded = analysis_concludes_violation(analysis, words)
        if concluded:
            return _conflicting(f"reasoning and answer disagree: {concluded}, the answer says safe", reading.notes)
    return reading


def _read_json_answer(
    text: str,
    objects: list,
    policy: PolicySpec,
    words: DecisionWords,
    found: Found,
    possible: list[Meaning],
    notes: list[str],
) -> Reading:
    readings = [reading for _, _, data in objects if (reading := read_json(data, policy, words)) is not None]
    if not readings:
        if found.groups:
            notes.append("JSON without a verdict field ignored")
            return _read_text(text, found, possible, notes)
        # A JSON answer without any verdict field is unreadable; scanning its rationale for label words
        # would be guessing.
        return _unparsable("the JSON answer has no verdict field", notes)
    primary = readings[0]
    if primary.conflict:
        return _conflicting(primary.conflict, notes)
    if any(other.violation != primary.violation or other.conflict for other in readings[1:]):
        return _conflicting("conflicting labels: the answer holds JSON objects that disagree", notes)
    groups = [(group, _group_meaning(group)) for group in found.groups]
    disagreement = _others_disagree(primary.violation, found, groups, None, possible)
    if disagreement:
        return _conflicting(disagreement, notes)
    notes += primary.notes
    start, end, _ = objects[0]
    if text[:start].strip() or text[end:].strip():
        notes.append("JSON read from inside other text")
    if len(readings) > 1:
        notes.append("several JSON objects agree")
    answer = Answer(
        violation=primary.violation,
        category=primary.category,
        rule_ids=primary.rule_ids,
        confidence=primary.confidence,
        rationale=primary.rationale,
    )
    return Reading(quality="recovered" if notes else "clean", answer=answer, notes=notes)
