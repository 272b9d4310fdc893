"""Demo policies for gpt-oss-safeguard, written for this project.

Each policy is a Markdown file under ``policies/``; the model reads its text as the developer message.
``DEMO_POLICIES`` describes how each one answers (label scheme, labels, output format) and how hard the
model should think about it. One policy carries a later revision so the demo shows version history and
a diff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

POLICY_DIR = Path(__file__).parent / "policies"


def load_policy_text(slug: str) -> str:
    """The Markdown text of a demo policy, read as UTF-8."""
    return (POLICY_DIR / f"{slug}.md").read_text(encoding="utf-8")


def _revise(text: str, old: str, new: str) -> str:
    """Apply one small edit to a policy text, failing loudly if the passage has moved."""
    if text.count(old) != 1:
        raise ValueError(f"revision anchor not found exactly once: {old!r}")
    return text.replace(old, new)


_HARASSMENT_V1 = load_policy_text("harassment-and-bullying")

# Version 2: reviewers kept seeing reports that quote the abuse they report, and the model flagged some
# of them; the safe rule now says so explicitly.
_HARASSMENT_V2 = _revise(
    _HARASSMENT_V1,
    "- HB0.c Reporting or describing harassment one has experienced.",
    "- HB0.c Reporting or describing harassment, including quoting the abusive message for moderators.",
)

DEMO_POLICIES: list[dict[str, Any]] = [
    {
        "name": "Spam and scams",
        "slug": "spam-and-scams",
        "description": "Unsolicited promotion, phishing and fraud, and coordinated or automated spam.",
        "text": load_policy_text("spam-and-scams"),
        "label_scheme": "categories",
        "labels": ["SP0", "SP2", "SP3", "SP4"],
        "output_format": "json",
        "reasoning_effort": "medium",
        "change_note": "Initial demo version",
    },
    {
        "name": "Harassment and bullying",
        "slug": "harassment-and-bullying",
        "description": "Abuse, threats, pile-ons, and degrading content aimed at an identifiable person.",
        "text": _HARASSMENT_V1,
        "label_scheme": "binary",
        "labels": ["0", "1"],
        "output_format": "binary",
        "reasoning_effort": "low",
        "change_note": "Initial demo version",
        "revisions": [
            {
                "text": _HARASSMENT_V2,
                "change_note": "HB0.c: quoting abuse in a report to moderators is safe",
            },
        ],
    },
    {
        "name": "Self-harm content",
        "slug": "self-harm",
        "description": "Self-harm encouragement, methods, and challenges; support and recovery stay allowed.",
        "text": load_policy_text("self-harm"),
        "label_scheme": "valid_invalid",
        "labels": ["VALID", "INVALID"],
        "output_format": "label",
        "reasoning_effort": "high",
        "change_note": "Initial demo version",
    },
    {
        "name": "Prompt injection",
        "slug": "prompt-injection",
        "description": "Attempts to override, extract, or hijack the instructions an AI assistant follows.",
        "text": load_policy_text("prompt-injection"),
        "label_scheme": "categories",
        "labels": ["PI0", "PI2", "PI3"],
        "output_format": "json",
        "reasoning_effort": "medium",
        "change_note": "Initial demo version",
    },
    {
        "name": "Illegal goods listings",
        "slug": "illegal-goods-listings",
        "description": "Marketplace listings for regulated, prohibited, counterfeit, stolen, or fraud goods.",
        "text": load_policy_text("illegal-goods-listings"),
        "label_scheme": "categories",
        "labels": ["IG0", "IG2", "IG3", "IG4"],
        "output_format": "json",
        "reasoning_effort": "medium",
        "change_note": "Initial demo version",
    },
]

__all__ = ["DEMO_POLICIES", "POLICY_DIR", "load_policy_text"]
