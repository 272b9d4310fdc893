"""What a policy's text asks the model to answer, checked against how the console will read it.

A policy version has a label scheme and labels (how answers are read) and a text (what the model is
told). When the two disagree, answers get lost: a text that asks for VALID/INVALID *and* for codes
DC0..DC3 under a VALID/INVALID scheme gets answers like "DC2" that cannot be read, and one that asks
for JSON under a label format gets objects where words were expected. `instruction_warnings` lists
such mismatches for the editor and the prompt preview; it never blocks a save.
"""

from __future__ import annotations

import re

from safeguard.specs import PolicySpec

_VALIDITY = re.compile(r"(?<![A-Za-z0-9_])(?:VALID|INVALID)(?![A-Za-z0-9_])")
_CODE = re.compile(r"(?<![A-Za-z0-9_\-])([A-Z]{1,8}\d+)(?:\.[A-Za-z0-9]+)*(?![A-Za-z0-9_])")
_DIGITS = re.compile(r"(?<![\w.])[01](?![\w.])\s*(?:or|/|\||,)\s*(?<![\w.])[01](?![\w.])|\b1\s+(?:for|if|when)\b")
_JSON = re.compile(r"\{\s*\"|\bJSON\b", re.IGNORECASE)


_INSTRUCTION_WORDS = re.compile(
    r"\b(?:answer|output|label|labels|respond|response|return|classify|classification|format|verdict|reply)\b",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+.*|[A-Z][A-Z &/-]{3,}:?)\s*$")


def instruction_text(text: str) -> str:
    """The parts of a policy that say what to answer: lines that speak of answering or labelling, and
    whole sections under such a heading ("## Label Format", "OUTPUT FORMAT"). Rule IDs defined
    elsewhere ("SP2.a Link farms") are what the model cites, not what it answers."""
    kept: list[str] = []
    in_section = False
    for line in text.splitlines():
        if _HEADING.match(line):
            in_section = _INSTRUCTION_WORDS.search(line) is not None
        if in_section or _INSTRUCTION_WORDS.search(line):
            kept.append(line)
    return "\n".join(kept)


_LABEL_LINE = re.compile(r"^[\s\-*•>`|]*([A-Z]{1,8}\d+)[`*|]*\s*(?::|=|-|–|—|\|)", re.MULTILINE)
_ANSWER_ARROW = re.compile(r"(?:->|→|=>)\s*[`*\"']*([A-Z]{1,8}\d+)(?![\w.])")


def _label_codes(asked: str) -> list[str]:
    """Codes the instruction offers as answers: a label-format line ("- `DC0`: allowed") or an example's
    answer ("... -> `DC2`"). A code named in passing ("any SH1 or SH2 rule") is not one."""
    found = [m.group(1) for m in _LABEL_LINE.finditer(asked)] + [m.group(1) for m in _ANSWER_ARROW.finditer(asked)]
    return list(dict.fromkeys(found))


def _codes(text: str) -> list[str]:
    return list(dict.fromkeys(match.group(1) for match in _CODE.finditer(text)))


def _family(code: str) -> str:
    return re.sub(r"\d+$", "", code)


def _listed(codes: list[str]) -> str:
    return ", ".join(codes[:8]) + (" …" if len(codes) > 8 else "")


def instruction_warnings(policy: PolicySpec) -> list[str]:
    """Ways the policy text and its label scheme / output format disagree (empty when they agree)."""
    text = policy.text
    asked = instruction_text(text)
    warnings: list[str] = []
    asks_validity = _VALIDITY.search(asked) is not None
    codes = _label_codes(asked)
    families = {_family(label) for label in policy.labels if _CODE.fullmatch(label)}
    asks_digits = _DIGITS.search(asked) is not None
    asks_json = _JSON.search(asked) is not None

    if policy.label_scheme == "valid_invalid" and len(codes) >= 2:
        warnings.append(
            f"The text asks for VALID or INVALID but also defines the codes {_listed(codes)}; under the "
            "VALID/INVALID scheme an answer that gives only a code cannot be read and goes to a person. "
            "Use the categories scheme with these codes as labels, or drop the codes from the output format."
        )
    if policy.label_scheme == "categories":
        if asks_validity and policy.labels:
            warnings.append(
                f"The text asks for VALID or INVALID as well as the codes {_listed(list(policy.labels))}. "
                "Answers with either are read, but one that pairs VALID with a violating code (or INVALID with "
                "a safe one) is a conflict and goes to a person. Say which one the model should give."
            )
        undefined = [code for code in _codes(text) if _family(code) in families and code not in policy.labels
                     and not code.startswith(tuple(f"{label}." for label in policy.labels))]
        if undefined:
            warnings.append(
                f"The text uses the codes {_listed(undefined)}, which are not among the version's labels; "
                "answers with them are unknown codes and go to a person."
            )
        missing = [label for label in policy.labels if label not in text]
        if missing:
            warnings.append(f"The labels {_listed(missing)} never appear in the text, so the model is never told them.")
    if policy.label_scheme == "binary" and (asks_validity or len(codes) >= 2):
        asked = "VALID or INVALID" if asks_validity else f"the codes {_listed(codes)}"
        warnings.append(
            f"The scheme is 0/1 but the text asks for {asked}. VALID/INVALID answers are still read; "
            "codes are not. Pick the scheme the text asks for."
        )
    if policy.output_format == "json" and not asks_json:
        warnings.append("The output format is JSON, but the text never asks for a JSON object.")
    if policy.output_format != "json" and asks_json and '{"' in text:
        warnings.append("The text asks for a JSON object, but the output format is not JSON.")
    if not (asks_validity or asks_digits or codes or asks_json or any(label in text for label in policy.labels)):
        warnings.append("The text never says what to answer: no labels, codes, 0/1 or JSON shape appear in it.")
    return warnings
