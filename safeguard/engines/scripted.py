"""A deterministic stand-in for the model, for tests, demos and benchmarks without a GPU.

It answers with real harmony tokens (an analysis message, then a final message
ending in ``<|return|>``), encoded with the real vocabulary, so everything
downstream - parsing, storage, the review UI - runs exactly as with vLLM. It is
only ever built for backend "scripted"; it is never a default.

The default responder is steered by directives anywhere in the content text:

* ``#verdict=1`` / ``#verdict=0`` - answer violation / no violation;
* ``#label=SP2.a`` - answer that label or rule ID;
* ``#unparsable`` - a final answer that is not a verdict;
* ``#echo`` - repeat the output instruction ("Answer (VALID or INVALID):") before the answer;
* ``#conflict`` - a final answer that says both "violation" and "no violation";
* ``#disagree`` - reasoning that concludes "violation", then a final answer of "no violation";
* ``#truncate`` - stop inside the analysis with finish_reason "length";
* ``#empty`` - an empty final answer;
* ``#error`` - finish_reason "error";
* ``#slow=<seconds>`` - sleep that long before answering this item;
* ``#if=<word>`` - a violation when the policy's text mentions <word>, else not: two versions of a
  policy then disagree on the item, as a revised rule would make them.

Without a directive, content mentioning "buy now", "free money" or "click here"
is a violation and anything else is not. The answer takes the policy's
output_format: "1"/"0", a label word, or a JSON object.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from openai_harmony import Message, Role

from safeguard.completion import Completion, Request
from safeguard.labels import canonical_label, is_safe_label, match_category, safe_label, violation_label
from safeguard.specs import Content, PolicySpec
from safeguard.vocab import get_encoding

SPAM_PHRASES = ("buy now", "free money", "click here")
_DIRECTIVE = re.compile(r"#(verdict|label|slow|if)=(\S+)|#(unparsable|truncate|empty|error|echo|conflict|disagree)\b")


@dataclass(slots=True)
class ScriptedReply:
    """What the scripted model says: analysis text, then a final answer (None: no final message)."""

    analysis: str
    final: str | None
    finish_reason: str = "stop"
    error: str = ""
    delay_s: float = 0.0


Responder = Callable[[Request], ScriptedReply]


def _all_text(content: Content) -> str:
    if content.kind == "conversation":
        return "\n".join(turn.content for turn in content.turns)
    return content.text


def _directives(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _DIRECTIVE.finditer(text):
        if match.group(1):
            found.setdefault(match.group(1), match.group(2))
        else:
            found.setdefault(match.group(3), "")
    return found


def _pick_category(policy: PolicySpec, violation: bool, code: str) -> tuple[str, str]:
    """(category, rule id) the scripted model names; ("", "") when the policy has no categories."""
    if code:
        return match_category(code, policy.labels)
    if policy.label_scheme == "categories" or policy.labels:
        return (violation_label(policy) if violation else safe_label(policy)), ""
    return "", ""


def _answer(policy: PolicySpec, violation: bool, category: str, rule: str, why: str) -> str:
    """The final answer in the policy's output format."""
    if policy.output_format == "binary":
        return "1" if violation else "0"
    if policy.output_format == "label":
        if rule or category:
            return rule or category
        return "INVALID" if violation else "VALID"
    return json.dumps(
        {
            "violation": 1 if violation else 0,
            "policy_category": category or None,
            "rule_ids": [rule] if rule else [],
            "confidence": "high",
            "rationale": why,
        }
    )


def default_responder(request: Request) -> ScriptedReply:
    """Directive-driven, otherwise keyword-driven answers (see the module docstring)."""
    policy = request.policy
    directives = _directives(_all_text(request.content))
    delay = 0.0
    if "slow" in directives:
        try:
            delay = max(0.0, float(directives["slow"]))
        except ValueError:
            delay = 0.0
    if "error" in directives:
        return ScriptedReply("", None, finish_reason="error", error="scripted error (#error)", delay_s=delay)
    if "truncate" in directives:
        return ScriptedReply(
            "Scripted engine: #truncate asks me to run out of tokens while still reasoning, so I stop",
            None,
            finish_reason="length",
            delay_s=delay,
        )
    if "unparsable" in directives:
        return ScriptedReply(
            "Scripted engine: #unparsable asks for a final answer that is not a verdict.",
            "¯\\_(ツ)_/¯ hard to say, honestly",
            delay_s=delay,
        )
    if "empty" in directives:
        return ScriptedReply("Scripted engine: #empty asks for an empty final answer.", "", delay_s=delay)
    safe, bad = (
        _answer(policy, False, *_pick_category(policy, False, ""), "-"),
        _answer(policy, True, *_pick_category(policy, True, ""), "-"),
    )
    if "conflict" in directives:
        return ScriptedReply(
            "Scripted engine: #conflict asks for an answer that contradicts itself.",
            f"{safe}\n\nOn second thought:\n{bad}",
            delay_s=delay,
        )
    if "disagree" in directives:
        return ScriptedReply(
            f"Scripted engine: #disagree. The content breaks the policy. So the answer is "
            f"{canonical_label(policy, True, violation_label(policy))}.",
            safe,
            delay_s=delay,
        )

    code = ""
    if "label" in directives:
        code = directives["label"]
        category, _ = match_category(code, policy.labels)
        violation = not is_safe_label(category)
        why = f"directive #label={code}"
    elif "if" in directives:
        word = directives["if"]
        violation = word.lower() in policy.text.lower()
        why = f"directive #if={word}: the policy {'mentions' if violation else 'does not mention'} {word}"
    elif "verdict" in directives:
        violation = directives["verdict"] not in ("0", "false", "no")
        why = f"directive #verdict={directives['verdict']}"
    else:
        text = _all_text(request.content).lower()
        hits = [phrase for phrase in SPAM_PHRASES if phrase in text]
        violation = bool(hits)
        why = f"keyword rule matched {', '.join(hits)}" if hits else "keyword rule found no spam phrase"
    category, rule = _pick_category(policy, violation, code)
    outcome = "a violation" if violation else "not a violation"
    analysis = (
        f"Scripted engine: {why}; the content is {outcome} "
        f"(label {canonical_label(policy, violation, category)}). "
        f"Answering in the policy's {policy.output_format} format."
    )
    final = _answer(policy, violation, category, rule, why)
    if "echo" in directives:
        final = f"{_instruction(policy)}\n{final}"
    return ScriptedReply(analysis, final, delay_s=delay)


def _instruction(policy: PolicySpec) -> str:
    """The output instruction as models echo it: the policy's choices, then a colon."""
    if policy.output_format == "binary":
        return "Answer (0 or 1):"
    choices = list(policy.labels) or ["VALID", "INVALID"]
    return f"Answer ({', '.join(choices[:-1])} or {choices[-1]}):" if len(choices) > 1 else "Answer:"


@functools.cache
def _frames() -> tuple[tuple[int, ...], tuple[int, ...], int, int]:
    """Header tokens of the analysis and final messages, and the <|end|> / <|return|> ids."""
    encoding = get_encoding()
    analysis = encoding.render(Message.from_role_and_content(Role.ASSISTANT, "").with_channel("analysis"))
    final = encoding.render(Message.from_role_and_content(Role.ASSISTANT, "").with_channel("final"))
    end_token = analysis[-1]
    return_token = encoding.encode("<|return|>", allowed_special="all")[0]
    # The completion continues a prompt that ends in <|start|>assistant, so the first
    # message leaves those two tokens out.
    return tuple(analysis[2:-1]), tuple(final[:-1]), end_token, return_token


def encode_reply(reply: ScriptedReply) -> list[int]:
    """Harmony completion tokens for a reply, as the model generates them after ``<|start|>assistant``."""
    encoding = get_encoding()
    analysis_head, final_head, end_token, return_token = _frames()
    tokens = list(analysis_head)
    tokens += encoding.encode(reply.analysis, disallowed_special=())
    if reply.final is None:
        if reply.finish_reason != "length":
            tokens.append(end_token)
        return tokens
    tokens.append(end_token)
    tokens += final_head
    tokens += encoding.encode(reply.final, disallowed_special=())
    tokens.append(return_token)
    return tokens


class ScriptedEngine:
    """Scripted completions with real harmony tokens; `latency_s` is slept once per batch."""

    def __init__(
        self,
        responder: Responder | None = None,
        latency_s: float = 0.0,
        name: str = "scripted-test-engine",
    ) -> None:
        self.responder = responder or default_responder
        self.latency_s = latency_s
        self.name = name

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        started = time.perf_counter()
        if self.latency_s > 0 and requests:
            time.sleep(self.latency_s)
        completions = []
        for request in requests:
            reply = self.responder(request)
            if reply.delay_s > 0:
                time.sleep(reply.delay_s)
            if reply.finish_reason == "error":
                completion = Completion(
                    key=request.key,
                    finish_reason="error",
                    error=reply.error or "scripted error",
                    prompt_tokens=request.prompt.total_tokens,
                    model=self.name,
                )
            else:
                tokens = encode_reply(reply)
                completion = Completion(
                    key=request.key,
                    token_ids=tokens,
                    finish_reason=reply.finish_reason,
                    prompt_tokens=request.prompt.total_tokens,
                    completion_tokens=len(tokens),
                    model=self.name,
                )
            completion.latency_s = time.perf_counter() - started
            completions.append(completion)
        return completions
