from __future__ import annotations

import random

import pytest
from openai_harmony import HarmonyError, Role, TextContent

from safeguard.channels import split_canonical, split_text, split_tokens
from safeguard.vocab import get_encoding
from tests.safeguard.helpers import harmony_tokens

PIECES = [
    "<|channel|>",
    "<|message|>",
    "<|end|>",
    "<|return|>",
    "<|start|>",
    "<|constrain|>",
    "<|call|>",
    "assistant",
    "analysis",
    "final",
    "commentary",
    "user",
    " to=functions.x",
    "json",
    "The post is spam",
    '{"violation": 1}',
    "0",
    "<|end|> typed as text",
    " ",
    "\n",
]


def harmony_reading(tokens: list[int]) -> tuple[str, str | None] | None:
    """What harmony's own parser makes of the tokens, in split_canonical's terms (None: it raises)."""
    try:
        messages = get_encoding().parse_messages_from_completion_tokens(tokens, Role.ASSISTANT)
    except HarmonyError:
        return None
    analysis, final = [], None
    for message in messages:
        text = "".join(part.text for part in message.content if isinstance(part, TextContent))
        if message.channel == "final":
            final = text
        elif message.channel in ("analysis", None):
            analysis.append(text)
    return "\n\n".join(analysis), final


def build(*parts: str) -> list[int]:
    """Tokens for harmony pieces: "<|...|>" parts are special tokens, everything else plain text."""
    encoding = get_encoding()
    tokens: list[int] = []
    for part in parts:
        if part.startswith("<|") and part.endswith("|>"):
            tokens += encoding.encode(part, allowed_special="all")
        else:
            tokens += encoding.encode(part, disallowed_special=())
    return tokens


def canonical_shapes() -> list[list[int]]:
    shapes = []
    for analysis in ("", "Thinking about SP2.a.", "multi\nline <|end|> typed as text"):
        for final in ("1", "", '{"violation": 0}'):
            head = ["<|channel|>", "analysis", "<|message|>", analysis, "<|end|>"]
            head += ["<|start|>", "assistant", "<|channel|>", "final", "<|message|>", final]
            shapes += [build(*head, "<|return|>"), build(*head, "<|end|>"), build(*head)]
        shapes.append(build("<|channel|>", "analysis", "<|message|>", analysis))
        shapes.append(build("<|channel|>", "analysis", "<|message|>", analysis, "<|end|>"))
    shapes.append(build("<|channel|>", "final", "<|message|>", "0", "<|return|>"))
    return shapes


@pytest.mark.parametrize("tokens", canonical_shapes())
def test_it_reads_canonical_completions_exactly_as_harmony_does(tokens: list[int]) -> None:
    fast = split_canonical(tokens)

    assert fast is not None
    assert (fast.analysis, fast.final) == harmony_reading(tokens)


def test_it_never_disagrees_with_harmony_on_generated_completions() -> None:
    rng = random.Random(20240607)
    encoding = get_encoding()
    answered = 0
    for _ in range(1500):
        pieces = [rng.choice(PIECES) for _ in range(rng.randint(0, 12))]
        if rng.random() < 0.5:
            pieces = ["<|channel|>", "analysis", "<|message|>", *pieces]
        tokens = build(*pieces)
        fast = split_canonical(tokens)
        if fast is None:
            continue
        answered += 1
        assert (fast.analysis, fast.final) == harmony_reading(tokens), encoding.decode(tokens)
    assert answered > 50  # the walker did take part


@pytest.mark.parametrize(
    "text",
    [
        "<|channel|>analysis<|message|>x<|end|><|start|>assistant<|channel|>final <|constrain|>json<|message|>{}",
        "<|channel|>analysis<|message|>x<|end|><|start|>user<|channel|>final<|message|>1",
        "<|channel|>analysis<|message|>x<|end|>stray<|start|>assistant<|channel|>final<|message|>1",
        "<|channel|>analysis<|message|>x<|return|><|start|>assistant<|channel|>final<|message|>1",
        "<|channel|>analysis to=functions.f<|message|>{}<|call|>",
        "no markers at all",
    ],
)
def test_it_leaves_anything_unusual_to_harmony(text: str) -> None:
    assert split_canonical(harmony_tokens(text)) is None


def test_it_splits_by_hand_when_harmony_rejects_the_header() -> None:
    text = "<|channel|>analysis<|message|>a<|end|><|start|><|channel|>final<|message|>1<|return|>"

    channels = split_tokens(harmony_tokens(text))

    assert (channels.analysis, channels.final, channels.raw) == ("a", "1", text)


def test_it_splits_text_on_markers() -> None:
    channels = split_text(
        "<|channel|>analysis<|message|>one<|end|><|channel|>commentary<|message|>skip<|end|>"
        "<|start|>assistant<|channel|>final <|constrain|>json<|message|>{}<|return|>"
    )

    assert (channels.analysis, channels.final) == ("one", "{}")
    assert split_text("nothing here").final is None
