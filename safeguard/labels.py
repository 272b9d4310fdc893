"""How a policy's labels map onto violation / no violation.

Rules (shared by the parser and the scripted engine):

* binary scheme: the canonical label is "1" (violation) or "0".
* valid_invalid scheme: "INVALID" (violation) or "VALID".
* categories scheme: the canonical label is the policy's category code (e.g. "SP2").
  A category counts as *not* a violation when its code is letters followed only
  by zeros ("SP0", "0", "S00", also with a rule suffix like "SP0.a") or when it is
  named like a safe bucket (SAFE, NONE, VALID, BENIGN, OK, NO_VIOLATION, ...).
  Every other category is a violation: "SP10" is category ten, not zero.
"""

from __future__ import annotations

import re

from safeguard.specs import PolicySpec

SAFE_NAMES = frozenset(
    {
        "SAFE",
        "NONE",
        "VALID",
        "BENIGN",
        "OK",
        "CLEAN",
        "ALLOWED",
        "NO_VIOLATION",
        "NOT_VIOLATING",
        "NON_VIOLATING",
    }
)
_ZERO_CODE = re.compile(r"[A-Za-z_]*0+(?:[.\-][A-Za-z0-9]+)*")
_RULE_SEPARATORS = ".-_:/"


def is_safe_label(code: str) -> bool:
    """True when a category code or label word means "no violation" (see module docstring)."""
    stripped = code.strip()
    normalized = "_".join(stripped.upper().replace("-", " ").split())
    return normalized in SAFE_NAMES or _ZERO_CODE.fullmatch(stripped) is not None


def safe_label(policy: PolicySpec) -> str:
    """The label a policy uses for "no violation"."""
    for label in policy.labels:
        if is_safe_label(label):
            return label
    return "VALID" if policy.label_scheme == "valid_invalid" else "0"


def violation_label(policy: PolicySpec) -> str:
    """The first label a policy uses for a violation (for engines that must pick one)."""
    for label in policy.labels:
        if not is_safe_label(label):
            return label
    return "INVALID" if policy.label_scheme == "valid_invalid" else "1"


def match_category(code: str, labels: tuple[str, ...]) -> tuple[str, str]:
    """Split a written code into (category, rule id) using the policy's labels.

    "SP2.a" with labels ("SP0", "SP2") gives ("SP2", "SP2.a"); "sp2" gives ("SP2", "");
    with no matching label a dotted code splits at its first dot.
    """
    code = code.strip()
    upper = code.upper()
    for label in labels:
        if label.upper() == upper:
            return label, ""
    best = ""
    for label in labels:
        if (
            len(label) > len(best)
            and upper.startswith(label.upper())
            and len(code) > len(label)
            and code[len(label)] in _RULE_SEPARATORS
        ):
            best = label
    if best:
        return best, code
    if "." in code:
        return code.split(".", 1)[0], code
    return code, ""


def canonical_label(policy: PolicySpec, violation: bool, category: str) -> str:
    """The label stored on a verdict, in the policy's own scheme (see module docstring).

    For the categories scheme without a readable category this falls back to the
    policy's safe label for "no violation" and to "1" for a violation.
    """
    if policy.label_scheme == "binary":
        return "1" if violation else "0"
    if policy.label_scheme == "valid_invalid":
        return "INVALID" if violation else "VALID"
    if category:
        return category
    return "1" if violation else safe_label(policy)
