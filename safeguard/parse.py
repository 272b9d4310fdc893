"""From a completion to a Verdict.

Token completions are split into channels with harmony's own parser (falling
back to a hand-rolled split when it rejects a malformed header); HTTP
completions arrive already split. The final channel is then read by
safeguard.answer. An answer that cannot be read, that contradicts itself or
its reasoning, or that was cut off is never taken as "safe": it becomes status
"unparsable", "conflicting" or "truncated" with violation None, the reason in
`error` and the raw output kept.

Measured on the 2-core dev box: about 45 µs per token completion (a short
analysis and a JSON answer, read by safeguard.channels' canonical walker) and
about 12 µs per HTTP completion.
"""

from __future__ import annotations

from safeguard.answer import read_answer
from safeguard.channels import split_http, split_tokens
from safeguard.completion import Completion
from safeguard.labels import canonical_label
from safeguard.specs import PolicySpec
from safeguard.verdict import Verdict


def parse_completion(completion: Completion, policy: PolicySpec) -> Verdict:
    """Read one completion under the policy it was generated for."""
    if completion.finish_reason == "error":
        return Verdict(
            status="failed",
            error=completion.error or "the engine reported an error",
            reasoning=completion.reasoning or "",
            raw_output=completion.text or "",
        )
    if completion.token_ids is not None:
        channels = split_tokens(completion.token_ids)
        raw_output = channels.raw
    else:
        channels = split_http(completion.text, completion.reasoning)
        raw_output = completion.text or ""

    def unread(status: str, error: str, notes: list[str] | None = None) -> Verdict:
        return Verdict(
            status=status,
            reasoning=channels.analysis,
            raw_output=raw_output,
            error=error,
            quality=status,
            notes=notes or [],
        )

    # A cut answer is never a verdict, whatever label words it already holds: the rest might have
    # reversed them ("VALID ... no, INVALID").
    if completion.finish_reason == "length":
        where = "the final answer" if channels.final else "the final answer was written"
        return unread("truncated", f"the token budget ran out before {where} ended")
    if channels.final is not None and channels.final_closed is False:
        return unread("truncated", "the final answer stops without its end token")
    if channels.final is None:
        return unread("unparsable", "the completion has no final-channel answer")

    reading = read_answer(channels.final, policy, channels.analysis)
    if reading.answer is None:
        return unread(reading.quality, reading.reason, reading.notes)
    answer = reading.answer
    return Verdict(
        status="done",
        label=canonical_label(policy, answer.violation, answer.category),
        violation=answer.violation,
        category=answer.category,
        rule_ids=answer.rule_ids,
        confidence=answer.confidence,
        rationale=answer.rationale,
        reasoning=channels.analysis,
        raw_output=raw_output,
        quality=reading.quality,
        notes=reading.notes,
    )
