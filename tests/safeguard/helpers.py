"""Shared test data for the engine tests: policies, requests and harmony token builders; synthetic
labelled texts for the first pass."""

from __future__ import annotations

import random

from safeguard import Content, PolicySpec, Request, firstpass, render_prompt
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


_SAFE_WORDS = ["meeting", "lunch", "invoice", "attached", "order", "shipped", "thanks", "tomorrow", "call", "train",
               "coffee", "report"]
_SPAM_WORDS = ["winner", "prize", "free", "cash", "click", "claim", "offer", "casino", "bitcoin", "pills", "discount",
               "urgent"]


def separable_examples(n_safe: int = 160, n_spam: int = 80, n_hidden: int = 0, seed: int = 0
                       ) -> list[firstpass.LabeledText]:
    """Safe mail (SP0), spam the first pass learns easily (SP2), and `n_hidden` violations (SP3) written
    with the safe mail's words, which it cannot tell apart."""
    rng = random.Random(seed)

    def texts(words: list[str], n: int) -> list[str]:
        return [" ".join(rng.choices(words, k=8)) + f" ref{rng.randrange(10**6)}" for _ in range(n)]

    return ([firstpass.LabeledText(t, False, "SP0") for t in texts(_SAFE_WORDS, n_safe)]
            + [firstpass.LabeledText(t, True, "SP2") for t in texts(_SPAM_WORDS, n_spam)]
            + [firstpass.LabeledText(t, True, "SP3") for t in texts(_SAFE_WORDS, n_hidden)])
