"""Finding the decisions in a cleaned answer: decision groups and prose mentions.

A *decision group* is one or more tokens that start a line ("INVALID (DE3)", "SP2.a, SP2.b - link
farm", "1.") or follow a decision prefix ("Answer: INVALID", "The label is DC2", a line "Verdict:"
with the tokens on the next line). Tokens in a group are joined only by punctuation, so
"INVALID (DE3)" and "DC2 — DC2.a" are one decision each.

A *prose mention* is a token inside a sentence ("the content is INVALID because..."). Prose counts
only in the exact case the policy writes its labels (so "a valid question" is not VALID), digits never
count in prose, and a mention is marked *negated* ("not VALID", "does not fall under DC2") or *hedged*
("it might seem VALID", a question) so that neither can make a "safe" verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from safeguard.decision_words import VALIDITY_WORDS, DecisionWords, Meaning

_JOINER = re.compile(r"[\s,;:+&()\[\]/|\-–—.]*")
_AFTER_DIGIT = re.compile(r"[ \t]*(?:$|[.:;,)\]\-–—\"'*!])")
_ONLY_PUNCTUATION = re.compile(r"[\W_]*")
_ECHO_END = re.compile(r"(?::|=|->|=>|→)\s*[\W_]*$")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_NEGATORS = frozenset(
    {
        "not",
        "no",
        "never",
        "isn't",
        "isnt",
        "aren't",
        "wasn't",
        "doesn't",
        "doesnt",
        "don't",
        "didn't",
        "cannot",
        "can't",
        "won't",
        "without",
        "nor",
        "neither",
        "non",
        "nothing",
        "none",
        "lacks",
        "rather",
    }
)
_HEDGES = frozenset(
    {
        "might",
        "may",
        "could",
        "would",
        "seem",
        "seems",
        "appear",
        "appears",
        "if",
        "unless",
        "whether",
        "possibly",
        "perhaps",
        "maybe",
        "arguably",
        "likely",
        "unlikely",
        "unsure",
        "unclear",
        "either",
        "initially",
        "first",
        "borderline",
        "probably",
        "ambiguous",
    }
)
_WORDS_BEFORE = re.compile(r"[A-Za-z']+")
_CLAUSE = re.compile(r"[,;:()\[\]—–]|\b(?:and|but|so|while|whereas|because|since|though|although)\b", re.IGNORECASE)
# Other tokens joined to this one ("SP2.a and SP2.b", "DC1/DC2 (promotion)"), skipped before looking
# for a negation that follows the whole list.
_JOINED_AFTER = re.compile(
    r"(?:\s*\([^()\n]{0,60}\)|\s*(?:,|and|or|/|&|nor)\s*(?:[A-Za-z]{1,8}\d+[\w.\-]*|[A-Z]{3,}))*", re.IGNORECASE
)
_NEGATED_AFTER = re.compile(
    r"[\s)\]]*(?:(?:does|do|is|are|did|was|were|would|should|could|can|will|also)\s+)?"
    r"(?:not\b|never\b|n't\b|doesn't|don't|isn't|aren't|wasn't|weren't|can't|cannot|won't|wouldn't|"
    r"(?:is|are)\s+(?:absent|missing|inapplicable)|n/?a\b)",
    re.IGNORECASE,
)


@dataclass(slots=True)
class Mention:
    token: str
    written: str  # the label part as the answer wrote it ("SP2" of "D-SP2.a")
    axis: str
    meaning: Meaning
    start: int
    end: int
    negated: bool = False
    hedged: bool = False


@dataclass(slots=True)
class Group:
    mentions: list[Mention]
    prefixed: bool
    line: int
    line_end: int  # where the group's line ends in the text
    end: int  # where the group's last token ends
    line_only: bool = False


@dataclass(slots=True)
class Found:
    groups: list[Group] = field(default_factory=list)
    prose: list[Mention] = field(default_factory=list)


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    begin = 0
    for boundary in _SENTENCE_END.finditer(text, 0, start):
        begin = boundary.end()
    after = _SENTENCE_END.search(text, end)
    return begin, after.end() if after else len(text)


def qualify(text: str, mention: Mention) -> None:
    """Mark a mention negated or hedged from the words of its clause and sentence."""
    begin, finish = _sentence(text, mention.start, mention.end)
    clause_start = begin
    for boundary in _CLAUSE.finditer(text, begin, mention.start):
        clause_start = boundary.end()
    before = [word.lower() for word in _WORDS_BEFORE.findall(text[clause_start : mention.start])][-8:]
    # "nothing asks for money (SP3)", "not VALID"; and after it: "SP2.a and SP2.b do not fit".
    mention.negated = any(word in _NEGATORS or word.endswith("n't") for word in before) or (
        _NEGATED_AFTER.match(text, _JOINED_AFTER.match(text, mention.end).end()) is not None
    )
    sentence_words = {word.lower() for word in _WORDS_BEFORE.findall(text[begin:finish])}
    mention.hedged = bool(sentence_words & _HEDGES) or text[begin:finish].rstrip().endswith("?")


def find_mentions(text: str, words: DecisionWords) -> Found:
    found = Found()
    offset = 0
    previous_is_prefix = False
    for number, line in enumerate(text.split("\n")):
        matches = [
            (match, meaning)
            for match in words.token_re.finditer(line)
            if (meaning := words.meaning(match.group("word"), match.group("suffix"))) is not None
        ]
        line_is_prefix = False
        position = 0
        group: Group | None = None
        for match, meaning in matches:
            mention = Mention(
                token=match.group(0),
                written=match.group("word"),
                axis=match.group("axis") or "",
                meaning=meaning,
                start=offset + match.start(),
                end=offset + match.end(),
            )
            written = match.group("word")
            # Prose counts only as the policy writes its labels: "a valid question" is not VALID.
            exact = (
                written in words.labels
                or written in VALIDITY_WORDS
                or (written.isupper() and any(char.isdigit() for char in written))
            )
            if group is not None and _JOINER.fullmatch(line, position, match.start()):
                group.mentions.append(mention)
                group.end = mention.end
                position = match.end()
                continue
            if group is not None:
                found.groups.append(group)
                group = None
            before = line[: match.start()]
            leading = _ONLY_PUNCTUATION.fullmatch(before) is not None
            prefixed = not leading and words.prefix_re.fullmatch(before) is not None
            if not leading and not prefixed and _ECHO_END.search(before) and words.in_policy(before):
                # The policy's own instruction, repeated, then the answer: "1 for spam, 0 otherwise: 1".
                # Tokens inside the repeated instruction are the policy's, not the model's.
                prefixed = True
                found.prose = [m for m in found.prose if m.start < offset]
                found.groups = [g for g in found.groups if g.line != number]
            if leading and previous_is_prefix:
                prefixed = True
            starts_group = leading or prefixed
            if starts_group and meaning.is_digit and not _AFTER_DIGIT.match(line, match.end()):
                starts_group = False  # "0 links found" is no verdict
            if starts_group:
                group = Group(
                    mentions=[mention],
                    prefixed=prefixed,
                    line=number,
                    line_end=offset + len(line),
                    end=mention.end,
                    line_only=False,
                )
                position = match.end()
                continue
            position = match.end()
            if meaning.is_digit and _AFTER_DIGIT.match(line, match.end()):
                # "0 ... wait, 1": a bare digit on its own counts; "1 link" is a count, not a label.
                qualify(text, mention)
                found.prose.append(mention)
                continue
            if meaning.is_digit or not exact:
                continue
            if not meaning.known and not words.is_relevant_code(match.group("word")):
                continue  # "MP3", "COVID19": code-shaped words of no family of this policy
            qualify(text, mention)
            found.prose.append(mention)
        if group is not None:
            found.groups.append(group)
        if not matches:
            line_is_prefix = (
                bool(line.strip())
                and words.prefix_re.fullmatch(line) is not None
                and bool(re.search(r"[A-Za-z]", line))
            )
        for grp in found.groups:
            if grp.line == number:
                rest = text[grp.end : grp.line_end]
                grp.line_only = _ONLY_PUNCTUATION.fullmatch(rest) is not None
        # A lower-case or mixed-case word counts only as a whole line or after a prefix ("Answer: invalid").
        found.groups = [grp for grp in found.groups if grp.line != number or _case_ok(grp)]
        previous_is_prefix = line_is_prefix or (previous_is_prefix and not line.strip())
        offset += len(line) + 1
    return found


def _case_ok(group: Group) -> bool:
    if group.prefixed or group.line_only:
        return True
    return all(m.meaning.is_digit or m.written == m.written.upper() for m in group.mentions)


_DIGIT_LEAD = re.compile(r"\b(?:answer|output|label|verdict|return|respond\s+with|say)\W{0,3}$", re.IGNORECASE)


def all_mentions(text: str, words: DecisionWords) -> list[Mention]:
    """Every decision token of a prose text in order, qualified, without grouping (for reasoning)."""
    found = []
    for match in words.token_re.finditer(text):
        meaning = words.meaning(match.group("word"), match.group("suffix"))
        if meaning is None:
            continue
        written = match.group("word")
        if meaning.is_digit:
            if not _DIGIT_LEAD.search(text, max(0, match.start() - 20), match.start()):
                continue  # "one link", "1 post": a count; "Output 1." is a verdict
        elif not (written in words.labels or written in VALIDITY_WORDS or (
            written.isupper() and any(char.isdigit() for char in written)
        )):
            continue
        if not meaning.known and not words.is_relevant_code(written):
            continue
        mention = Mention(token=match.group(0), written=written, axis=match.group("axis") or "", meaning=meaning,
                          start=match.start(), end=match.end())
        qualify(text, mention)
        found.append(mention)
    return found
