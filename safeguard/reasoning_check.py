"""Whether the analysis channel concluded "violation" while the final answer says "safe".

Only the conclusion counts: the reasoning weighs every rule on its way ("Is it DC2? DC2 covers
instructions..."), so mentions along the way say nothing. The conclusion is the last few sentences
that are not questions; in them, the last decision token that is neither negated nor hedged decides,
and so does a plain "it violates" / "this is a violation" when no later token says otherwise.
"""

from __future__ import annotations

import re

from safeguard.decision_words import DecisionWords
from safeguard.echoes import clean_answer
from safeguard.mentions import all_mentions

CONCLUSION_SENTENCES = 3
# Sentence ends: ". " and the like, never the dot inside a rule ID ("SP2.a").
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_VIOLATES = re.compile(
    r"\b(?:violates|violating|is\s+a\s+violation|constitutes\s+a\s+violation|breaks\s+the\s+policy|"
    r"is\s+(?:spam|disallowed|prohibited|not\s+allowed)|should\s+be\s+(?:flagged|removed|blocked))\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(
    r"\b(?:not|no|never|doesn't|does\s+not|isn't|is\s+not|aren't|nothing|non|without)\b[^.!?\n]{0,30}$",
    re.IGNORECASE,
)
# What a conclusion of "no violation" sounds like: "Not spam.", "No injection.", "Allowed.", "It is fine."
_SAFE = re.compile(
    r"\b(?:not\s+(?:spam|a\s+violation|violating|harmful|harassment)|no\s+violation|does(?:\s+not|n't)\s+"
    r"violate|non-violating|is\s+(?:allowed|fine|acceptable|benign|safe|permitted|ok))\b"
    r"|^\s*(?:no\s+[a-z]+|allowed|safe|fine|benign|acceptable|permitted)\s*[.!]?\s*$",
    re.IGNORECASE | re.MULTILINE,
)


def _conclusion(analysis: str) -> str:
    sentences = [s.strip() for s in _SENTENCE_SPLIT.split(analysis) if s.strip() and not s.strip().endswith("?")]
    return "\n".join(sentences[-CONCLUSION_SENTENCES:])


def analysis_concludes_violation(analysis: str, words: DecisionWords) -> str:
    """What in the analysis' conclusion says "violation" ("" when nothing does, or it ends on "safe")."""
    if not analysis.strip():
        return ""
    conclusion = _conclusion(analysis)
    if words.violating_re.search(conclusion) is None and _VIOLATES.search(conclusion) is None:
        return ""  # nothing in it could say "violation": the usual case, and the cheap one
    cleaned = clean_answer(conclusion, words, copies=False).text
    signals: list[tuple[int, str]] = []  # (position, what it says: "" for safe)
    for mention in all_mentions(cleaned, words):
        if not mention.negated and not mention.hedged:
            says = "" if mention.meaning.violation is False else f"the reasoning concludes {mention.token}"
            signals.append((mention.start, says))
    for match in _VIOLATES.finditer(cleaned):
        if not _NEGATED.search(cleaned[max(0, match.start() - 40) : match.start()]):
            phrase = match.group(0).lower()
            signals.append((match.start(), f"the reasoning concludes that the content {phrase}"))
    signals += [(match.start(), "") for match in _SAFE.finditer(cleaned)]
    if not signals:
        return ""
    return max(signals)[1]
