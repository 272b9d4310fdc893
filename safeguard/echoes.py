"""Cleaning a final answer before it is read: markdown, and the parts that only repeat the instruction.

Real models often echo the policy's output instruction before answering ("Answer (VALID or INVALID):
INVALID", "VALID or INVALID:\\nINVALID"), copy lines of the policy, or list the label definitions.
Those words are not the model's decision, and reading them as one is how an INVALID answer used to
be stored as VALID. What is removed here:

* **alternatives**: two or more different decision tokens joined by "or", "/" or "|" (with markdown,
  brackets, or a short parenthetical after each: "`VALID` (allowed) or `INVALID` (dangerous)"), a
  comma list in brackets or after "one of", and ranges of codes ("DC0-DC3", "SP0 to SP4");
* **definitions**: a line that defines two or more tokens ("1 = violation, 0 = no violation");
* **copied lines**: a line of four or more words that appears in the policy text.

A plain comma list outside brackets ("SP2.a, SP2.b", "D-SP2, R-SP0") is a decision and stays.
Copied and definition lines whose tokens all say "violation" might have been the model's decision
after all, so their tokens come back as `possible` mentions: they cannot make a verdict, but a "safe"
reading that contradicts them is a conflict (see answer.py).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from safeguard.decision_words import RULE_SUFFIX, DecisionWords, Meaning, normal_words

_FENCE_LINE = re.compile(r"^[ \t]*(?:```|~~~)[\w+\-]*[ \t]*$", re.MULTILINE)
_EMPHASIS = re.compile(r"\*\*|__|~~|`|\*")
_LINE_MARKUP = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-•·][ \t]+)+", re.MULTILINE)
_HTML_TAG = re.compile(r"</?(?:b|strong|em|i|code|p|br|span)\b[^>]*>", re.IGNORECASE)
_OPENERS = {"(": ")", "[": "]", "{": "}", "<": ">", '"': '"', "'": "'"}
_OR = r"or|ou|oder|o|oppure|или"
_LIST_LEAD = re.compile(
    r"(?:\b(?:either|one\s+of|any\s+of|from|among|choose|between|options?|e\.g\.)\s*:?\s*)$", re.IGNORECASE
)


@dataclass(slots=True)
class Cleaned:
    text: str
    notes: list[str] = field(default_factory=list)
    possible: list[Meaning] = field(default_factory=list)


def strip_markdown(text: str) -> tuple[str, bool]:
    """The text without code fences, emphasis, headings, quotes and bullets; and whether any was there."""
    cleaned = _FENCE_LINE.sub("", text)
    cleaned = _HTML_TAG.sub("", cleaned)
    cleaned = _EMPHASIS.sub("", cleaned)
    cleaned = _LINE_MARKUP.sub("", cleaned)
    return cleaned, cleaned != text


@functools.lru_cache(maxsize=256)
def _list_patterns(words: DecisionWords) -> tuple[re.Pattern[str], re.Pattern[str]]:
    labels = sorted({*words.labels, "VALID", "INVALID"}, key=len, reverse=True)
    word = "|".join([re.escape(label) for label in labels if not label.isdigit()] + [r"[A-Za-z]{1,8}\d+", "[01]"])
    token = (
        r"(?<![A-Za-z0-9_\-])(?:[A-Z]{1,3}-)?(?:" + word + r")" + RULE_SUFFIX + r"(?![A-Za-z0-9_])"
        r"(?:\s*\([^()\n]{0,80}\))?"
    )
    separator = r"\s*(?:,\s*(?:(?:" + _OR + r")\s+)?|/|\||\b(?:" + _OR + r")\b)\s*"
    alternatives = re.compile(r"(?P<list>" + token + r"(?:" + separator + token + r")+)", re.IGNORECASE)
    ranges = re.compile(
        r"(?<![A-Za-z0-9_\-])(?P<low>[A-Za-z]{1,8}\d+)\s*(?:-|–|—|\.\.\.?|…|\bto\b|\bthrough\b)\s*"
        r"(?P<high>[A-Za-z]{1,8}\d+)(?![A-Za-z0-9_])",
        re.IGNORECASE,
    )
    return alternatives, ranges


def _tokens(words: DecisionWords, text: str) -> list[tuple[str, Meaning]]:
    found = []
    for match in words.token_re.finditer(text):
        meaning = words.meaning(match.group("word"), match.group("suffix"))
        if meaning is not None:
            found.append((match.group(0), meaning))
    return found


def _expand_to_brackets(text: str, start: int, end: int) -> tuple[int, int, bool]:
    """Widen [start, end) over the brackets or quotes around it; also say whether there were any."""
    before = start
    while before > 0 and text[before - 1] in " \t":
        before -= 1
    after = end
    while after < len(text) and text[after] in " \t":
        after += 1
    if before > 0 and after < len(text) and _OPENERS.get(text[before - 1]) == text[after]:
        return before - 1, after + 1, True
    return start, end, False


def _remove_alternatives(words: DecisionWords, text: str) -> tuple[str, bool]:
    alternatives, ranges = _list_patterns(words)
    removed = False
    spans: list[tuple[int, int]] = []
    for match in alternatives.finditer(text):
        found = _tokens(words, match.group("list"))
        distinct = {token.upper() for token, _ in found}
        if len(distinct) < 2:
            continue
        start, end, bracketed = _expand_to_brackets(text, match.start(), match.end())
        body = match.group("list")
        # Separators outside the parentheticals decide: "or", "/", "|" make a list of choices.
        outside = re.sub(r"\([^()\n]*\)", "", body)
        chooses = re.search(r"\b(?:" + _OR + r")\b|/|\|", outside, re.IGNORECASE) is not None
        lead = _LIST_LEAD.search(text, 0, start)
        if not (chooses or bracketed or lead):
            continue
        if lead:
            start = lead.start()
        spans.append((start, end))
    for match in ranges.finditer(text):
        low, high = match.group("low"), match.group("high")
        if low.upper() != high.upper() and words.meaning(low) is not None and words.meaning(high) is not None:
            spans.append(_expand_to_brackets(text, match.start(), match.end())[:2])
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + " " + text[end:]
        removed = True
    return text, removed


_DEFINITION = r"\s*(?:=|:|→|->)\s*(?P<rest>[A-Za-z(\"'])"


def _is_definition_line(words: DecisionWords, line: str) -> bool:
    defined = set()
    for match in words.token_re.finditer(line):
        follow = re.match(_DEFINITION, line[match.end() :])
        if follow is None or words.meaning(match.group("word"), match.group("suffix")) is None:
            continue
        rest = line[match.end() + follow.start("rest") :]
        head = words.token_re.match(rest)
        if head is not None and words.meaning(head.group("word"), head.group("suffix")) is not None:
            continue  # "INVALID: DC2" is a verdict with its category, not a definition
        defined.add(match.group(0).upper())
    return len(defined) >= 2


def clean_answer(text: str, words: DecisionWords, *, copies: bool = True) -> Cleaned:
    """The final answer with markdown and echoed instructions removed; line structure is kept.

    `copies=False` skips the line-by-line checks for copied policy lines and label definitions: the
    analysis channel quotes the policy as it weighs it, and only its offered alternatives matter there.
    """
    notes: list[str] = []
    possible: list[Meaning] = []
    text, had_markdown = strip_markdown(text)
    if words.token_re.search(text) is None:
        return Cleaned(text=text)  # nothing that could be a decision, so nothing to clean for one
    if had_markdown:
        notes.append("markdown removed")
    policy_text = words.policy_words
    lines = text.split("\n") if copies else []
    copied = defined = False
    for number, line in enumerate(lines):
        tokens = _tokens(words, line)
        if not tokens:
            continue
        normal = normal_words(line)
        # Four words besides the tokens: "Answer (0 or 1): 1" is an answer even if the policy reads so.
        plain_words = len(normal_words(words.token_re.sub(" ", line)).split())
        is_copy = plain_words >= 4 and f" {normal} " in policy_text
        is_definition = not is_copy and _is_definition_line(words, line)
        if is_copy or is_definition:
            lines[number] = ""
            copied = copied or is_copy
            defined = defined or is_definition
            meanings = [meaning for _, meaning in tokens]
            if all(meaning.violation is not False for meaning in meanings):
                possible += meanings
    if len({m.category or m.violation for m in possible}) > 1:
        possible = []  # a copied list of several labels is the label format, not a decision
    if copied:
        notes.append("lines copied from the policy removed")
    if defined:
        notes.append("label definitions removed")
    text, had_alternatives = _remove_alternatives(words, "\n".join(lines) if copies else text)
    if had_alternatives:
        notes.append("echoed label alternatives removed")
    return Cleaned(text=text, notes=notes, possible=possible)
