"""Harmony prompts for gpt-oss-safeguard: the policy first, then the content.

Layout (what harmony renders)::

    <|start|>system<|message|>...Reasoning: {effort}...<|end|>
    <|start|>developer<|message|># Instructions\\n\\n{policy text}<|end|>
    <|start|>user<|message|>{content}<|end|>
    <|start|>assistant

Everything up to the user message depends only on the policy, so every item
reviewed under one policy version shares that whole prefix and vLLM's prefix
cache computes it once. We exploit the same fact on the CPU: the system and
developer part is rendered by harmony once per (policy text, effort) and cached,
and each item only encodes its own content text between the user-message frame
tokens. tests/safeguard/test_prompt.py checks that this is token-for-token what
harmony renders for the whole conversation.

Measured on the 2-core dev box with a ~900-token policy: about 50 µs per item
for a ~35-token message, 75 µs for a short 6-turn conversation and 350 µs for a
500-token message - harmony's tokenizer (~0.7 µs per content token) is nearly
all of it. Rendering the whole conversation through harmony every time costs
about 1.2 ms per item.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from openai_harmony import (
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
)

from safeguard.specs import Content, PolicySpec
from safeguard.transcript import format_transcript
from safeguard.vocab import get_encoding

_EFFORTS = {"low": ReasoningEffort.LOW, "medium": ReasoningEffort.MEDIUM, "high": ReasoningEffort.HIGH}


@dataclass(slots=True)
class RenderedPrompt:
    """Prompt token ids plus the counts the console shows and budgets with."""

    token_ids: list[int]
    policy_tokens: int  # tokens of the policy text alone
    content_tokens: int  # tokens of the user message text alone
    total_tokens: int  # the whole prompt, frame tokens included

    def text(self) -> str:
        """The exact harmony text of the prompt, special tokens included."""
        return get_encoding().decode(self.token_ids)


def content_text(content: Content) -> str:
    """The user-message text for an item: the text itself, or a conversation transcript."""
    if content.kind == "conversation":
        return format_transcript(content.turns)
    return content.text


def count_tokens(text: str) -> int:
    """Tokens of plain text (special-token look-alikes count as ordinary text, as harmony renders them)."""
    return len(get_encoding().encode(text, disallowed_special=()))


def _encode_text(text: str) -> list[int]:
    # Harmony encodes message content as ordinary text: "<|end|>" typed by a user is
    # not the special token. disallowed_special=() gives exactly that encoding.
    return get_encoding().encode(text, disallowed_special=())


def _policy_messages(policy_text: str, reasoning_effort: str) -> list[Message]:
    system = SystemContent.new().with_reasoning_effort(_EFFORTS[reasoning_effort])
    developer = DeveloperContent.new().with_instructions(policy_text)
    return [
        Message.from_role_and_content(Role.SYSTEM, system),
        Message.from_role_and_content(Role.DEVELOPER, developer),
    ]


@functools.lru_cache(maxsize=256)
def _policy_prefix(policy_text: str, reasoning_effort: str) -> tuple[tuple[int, ...], int]:
    """System + developer tokens for one policy, and the token count of the policy text."""
    conversation = Conversation.from_messages(_policy_messages(policy_text, reasoning_effort))
    prefix = tuple(get_encoding().render_conversation(conversation))
    return prefix, len(_encode_text(policy_text))


@functools.cache
def _user_frame() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Tokens before and after the content of the user message (the latter opening the assistant turn)."""
    encoding = get_encoding()
    empty_user = encoding.render(Message.from_role_and_content(Role.USER, ""))
    assistant_start = encoding.render_conversation_for_completion(Conversation.from_messages([]), Role.ASSISTANT)
    # empty_user is <|start|>user<|message|><|end|>: content goes before the final <|end|>.
    return tuple(empty_user[:-1]), (empty_user[-1], *assistant_start)


def render_prompt(policy: PolicySpec, content: Content) -> RenderedPrompt:
    """Render the harmony prompt for one item under one policy (fast path, see module docstring)."""
    prefix, policy_tokens = _policy_prefix(policy.text, policy.reasoning_effort)
    user_open, user_close = _user_frame()
    body = _encode_text(content_text(content))
    token_ids = list(prefix)
    token_ids += user_open
    token_ids += body
    token_ids += user_close
    return RenderedPrompt(
        token_ids=token_ids,
        policy_tokens=policy_tokens,
        content_tokens=len(body),
        total_tokens=len(token_ids),
    )


def render_prompt_with_harmony(policy: PolicySpec, content: Content) -> list[int]:
    """Reference rendering: the whole conversation through harmony (slow; used to check the fast path)."""
    messages = _policy_messages(policy.text, policy.reasoning_effort)
    messages.append(Message.from_role_and_content(Role.USER, content_text(content)))
    return get_encoding().render_conversation_for_completion(Conversation.from_messages(messages), Role.ASSISTANT)


@functools.cache
def _stop_tokens() -> tuple[int, ...]:
    return tuple(get_encoding().stop_tokens_for_assistant_actions())


def stop_token_ids() -> list[int]:
    """Tokens that end the assistant's answer: <|return|> (and <|call|>, which a safeguard never needs).

    Deliberately not <|end|>: the model ends its analysis message with <|end|> and
    then goes on to write the final channel.
    """
    return list(_stop_tokens())
