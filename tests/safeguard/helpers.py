"""Shared test data for the engine tests: policies, requests and harmony token builders."""

from __future__ import annotations

from safeguard import Content, PolicySpec, Request, render_prompt
from safeguard.vocab import get_encoding

SPAM_POLICY = PolicySpec(
    text=(
        "# Spam policy\n"
        "SP0: not spam. SP2: bulk or deceptive promotion (SP2.a link farms, SP2.b fake giveaways). "
        "SP3: scams.\n"
        'Answer with JSON: {"violation": 0|1, "policy_category": "SP0|SP2|SP3", "rule_ids": [...], '
        '"confidence": "high|medium|low", "rationale": "..."}'
    ),
    reasoning_effort="low",
    output_format="json",
    label_scheme="categories",
    labels=("SP0", "SP2", "SP3"),
)
BINARY_POLICY = PolicySpec(text="Flag spam. Answer 1 for spam, 0 otherwise.", output_format="binary")
VALIDITY_POLICY = PolicySpec(
    text="Is this a valid support request? Answer VALID or INVALID.",
    output_format="label",
    label_scheme="valid_invalid",
    labels=("VALID", "INVALID"),
)


def harmony_tokens(text: str) -> list[int]:
    """Token ids for literal harmony text, special tokens included."""
    return get_encoding().encode(text, allowed_special="all")


def make_request(text: str, policy: PolicySpec = SPAM_POLICY, key: str = "item-1", max_tokens: int = 256) -> Request:
    content = Content(kind="message", text=text)
    return Request(
        key=key, policy=policy, content=content, prompt=render_prompt(policy, content), max_tokens=max_tokens
    )
