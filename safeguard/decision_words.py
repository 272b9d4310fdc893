"""The words a policy's decisions are written in, and what each one means.

A decision token is one of the policy's own labels or category codes (with an optional rule suffix:
"DC2.a"), VALID / INVALID (accepted under every scheme), a bare 0 / 1, or a code of the same shape as
the policy's codes that the policy does not define ("DC5" under DC0..DC3: an *unknown code*, which is
never a verdict and never safe). An axis prefix ("D-SP2, R-SP0", as the spam policy asks: depiction
and request) marks labels that answer different questions and so cannot contradict each other.

`words_for(policy)` compiles everything once per policy version (specs are hashable and immutable).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from safeguard.labels import is_safe_label, match_category
from safeguard.specs import PolicySpec

VALIDITY_WORDS = ("INVALID", "VALID")
# A rule ID's part after its category: "DC2.a", "SP2.b.1", "HS2-c"; never another code ("RS0-RS3" is a range).
RULE_SUFFIX = r"(?:\.[A-Za-z0-9]+|-(?![A-Za-z]{1,8}\d)[A-Za-z0-9]+)*"
_CODE_SHAPE = re.compile(r"([A-Za-z]{1,8})(\d+)")
_WORD = re.compile(r"[^\W_]+")


def normal_words(text: str) -> str:
    """The words of a text, lower case, one space apart: how echoes are compared with the policy."""
    return " ".join(word.lower() for word in _WORD.findall(text))


# Words that introduce the decision. Policies add their own ("Rating:", "Output:"), see instructions.py.
GENERIC_PREFIXES = (
    "final answer",
    "answer",
    "verdict",
    "label",
    "labels",
    "output",
    "classification",
    "classified as",
    "class",
    "result",
    "decision",
    "rating",
    "category",
    "policy category",
    "code",
    "codes",
    "category code",
    "policy code",
    "rule",
    "rules",
    "rule id",
    "rule ids",
    "prediction",
    "judgment",
    "judgement",
    "assessment",
    "conclusion",
    "final",
    "final label",
    "final verdict",
    "final classification",
    "final decision",
    "response",
    # other languages: the label words stay the policy's own, the prefix may not
    "respuesta",
    "réponse",
    "reponse",
    "antwort",
    "risposta",
    "resposta",
    "etiqueta",
    "étiquette",
)


@dataclass(frozen=True, slots=True)
class Meaning:
    """What one decision token says. `violation` is None for an unknown code."""

    violation: bool | None
    category: str = ""
    rule: str = ""
    known: bool = True
    is_digit: bool = False
    is_validity: bool = False


@dataclass(frozen=True, eq=False)  # identity hash: one instance per policy (words_for), cheap cache keys
class DecisionWords:
    policy: PolicySpec
    labels: tuple[str, ...]
    families: frozenset[str]  # the letter parts of the policy's codes, upper case ("DC", "SP")
    digits_are_verdicts: bool  # bare 0 / 1 mean no violation / violation
    token_re: re.Pattern[str]
    prefix_re: re.Pattern[str]
    policy_words: str  # normal_words(policy.text), padded with a space each side
    violating_re: re.Pattern[str]  # any token that could say "violation": a cheap first look (reasoning_check)
    # meaning() is pure and asked again for the same few tokens in every answer under a policy.
    _meanings: dict[tuple[str, str], Meaning | None] = field(default_factory=dict, repr=False)

    def in_policy(self, text: str) -> bool:
        """Whether these words (two or more) appear, in order and together, in the policy text."""
        normal = normal_words(text)
        return normal.count(" ") >= 1 and f" {normal} " in self.policy_words

    def meaning(self, word: str, suffix: str = "") -> Meaning | None:
        """The meaning of a matched token (word without axis), or None when it is no decision token here."""
        key = (word, suffix)
        if key not in self._meanings:
            if len(self._meanings) > 4096:
                self._meanings.clear()
            self._meanings[key] = self._meaning(word, suffix)
        return self._meanings[key]

    def _meaning(self, word: str, suffix: str) -> Meaning | None:
        upper = word.upper()
        if upper in VALIDITY_WORDS and not suffix:
            return Meaning(violation=upper == "INVALID", is_validity=True)
        for label in self.labels:
            if label.upper() == upper:
                if suffix:
                    category, rule = match_category(label + suffix, self.labels)
                    return Meaning(violation=not is_safe_label(category), category=category, rule=rule)
                return Meaning(violation=not is_safe_label(label), category=label, is_digit=label.isdigit())
        if word in ("0", "1") and not suffix:
            if self.digits_are_verdicts:
                return Meaning(violation=word == "1", is_digit=True)
            return None
        shape = _CODE_SHAPE.fullmatch(word)
        if shape is None:
            return None
        code = upper + suffix
        if not self.labels:
            if self.policy.label_scheme != "categories":
                return None
            # A categories policy that lists no codes: any code is its own category.
            category, rule = match_category(code, ())
            return Meaning(violation=not is_safe_label(category), category=category, rule=rule)
        return Meaning(violation=None, category=code, known=False)

    def is_relevant_code(self, word: str) -> bool:
        """Whether a code-shaped word belongs to the policy's code families (so prose mentions count)."""
        shape = _CODE_SHAPE.fullmatch(word)
        return shape is not None and shape.group(1).upper() in self.families


def _token_pattern(labels: tuple[str, ...]) -> re.Pattern[str]:
    words = sorted({*labels, *VALIDITY_WORDS}, key=len, reverse=True)
    alternatives = [re.escape(word) for word in words if word and not word.isdigit()]
    alternatives += [r"[A-Za-z]{1,8}\d+", r"[0-9]+"]
    return re.compile(
        r"(?<![A-Za-z0-9_\-])(?:(?P<axis>[A-Z]{1,3})-)?(?P<word>" + "|".join(alternatives) + r")"
        r"(?P<suffix>" + RULE_SUFFIX + r")(?![A-Za-z0-9_])",
        re.IGNORECASE,
    )


def _prefix_pattern(prefixes: tuple[str, ...]) -> re.Pattern[str]:
    # The whole text before a decision on its line, e.g. "Answer :", "**Final verdict** ->",
    # "I classify this as", "The label is". Echoed alternatives are already gone by then.
    words = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(set(prefixes), key=len, reverse=True))
    return re.compile(
        r"[\W_]*(?:(?:my|the|our|your)\s+)?(?:" + words + r")(?:\s*\([^()\n]*\))?"
        r"\s*(?:(?::|=|->|=>|→|-|–|—|is|would\s+be|should\s+be|will\s+be)\s*)*[\W_]*"
        r"|[\W_]*(?:i\s+(?:would\s+)?(?:classify|label|rate|mark)\s+(?:this|it|the\s+\w+)\s+as|"
        r"(?:this|it)\s+(?:is\s+)?(?:classified|labell?ed)\s+as)\s*[:\-]?\s*[\W_]*",
        re.IGNORECASE,
    )


_POLICY_PREFIX = re.compile(
    r"^[\W_]*([A-Za-z][A-Za-z ]{1,30}?)\s*(?:\([^()\n]*\))?\s*[:=]\s*[`*\"'\[(]*\s*"
    r"(?:VALID|INVALID|[A-Z]{1,8}\d+|[01])(?![A-Za-z0-9_])",
    re.MULTILINE,
)


def instruction_prefixes(policy_text: str) -> tuple[str, ...]:
    """The words the policy itself puts before a label ("Output: `INVALID`", "Rating (R0-R3):").

    A model that follows the policy's own wording writes its decision after them, so they count as
    decision prefixes for that policy. At most three words each, to stay clear of example sentences.
    """
    found: dict[str, None] = {}
    for match in _POLICY_PREFIX.finditer(policy_text):
        words = match.group(1).strip().lower().split()
        if 0 < len(words) <= 3:
            found[" ".join(words)] = None
    return tuple(found)


def _violating_pattern(labels: tuple[str, ...], families: frozenset[str], policy: PolicySpec,
                       digits: bool) -> re.Pattern[str]:
    words = [re.escape(label) for label in labels if not is_safe_label(label) and not label.isdigit()]
    words.append("INVALID")
    if families:
        words.append("(?:" + "|".join(sorted(families)) + r")\d*[1-9]\d*")
    if policy.label_scheme == "categories" and not labels:
        words.append(r"[A-Z]{1,8}\d*[1-9]\d*")
    if digits or any(label.isdigit() and not is_safe_label(label) for label in labels):
        words.append(r"\d*[1-9]\d*")
    return re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(words) + r")(?![A-Za-z0-9_])", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def words_for(policy: PolicySpec) -> DecisionWords:
    labels = tuple(label for label in policy.labels if label)
    families = frozenset(
        shape.group(1).upper() for label in labels if (shape := _CODE_SHAPE.fullmatch(label)) is not None
    )
    digit_labels = any(label.isdigit() for label in labels)
    return DecisionWords(
        policy=policy,
        labels=labels,
        families=families,
        digits_are_verdicts=not digit_labels,
        token_re=_token_pattern(labels),
        prefix_re=_prefix_pattern((*GENERIC_PREFIXES, *instruction_prefixes(policy.text))),
        policy_words=f" {normal_words(policy.text)} ",
        violating_re=_violating_pattern(labels, families, policy, not digit_labels),
    )
