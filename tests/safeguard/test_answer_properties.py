"""Property tests of answer reading: whatever is wrapped around a violation, it is never read as safe."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard import Completion, PolicySpec, Verdict, parse_completion
from tests.safeguard.answer_corpus import POLICIES
from tests.safeguard.helpers import harmony_tokens

# Per corpus policy: the tokens its answers use for "no violation" and for "violation".
TOKENS = {
    "binary": (["0"], ["1"]),
    "validity": (["VALID"], ["INVALID"]),
    "codes": (["RS0", "VALID"], ["RS1", "RS2", "RS2.a", "RS3", "INVALID", "INVALID (RS2)"]),
    "json": (["SP0"], ["SP2", "SP2.b", "SP3"]),
    "words": (["SAFE"], ["HARASSMENT", "THREAT"]),
    "hb": (["HB0"], ["HB1", "HB1.a", "HB2"]),
    "de": (["DE0", "VALID (DE0)"], ["DE1", "DE3", "INVALID (DE2)", "INVALID"]),
}
NEUTRAL = [
    "Let me check the message against the policy.",
    "The message mentions a product and a link.",
    "Reasoning: the text is short.",
    "Here is my classification.",
    "Based on the policy above:",
    "I have reviewed the content carefully.",
    "",
]
FAST = settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def read(final: str, policy: PolicySpec) -> Verdict:
    text = "<|channel|>analysis<|message|>Weighing the rules.<|end|><|start|>assistant<|channel|>final<|message|>"
    return parse_completion(Completion(key="k", token_ids=harmony_tokens(text + final + "<|return|>")), policy)


@st.composite
def emphasised(draw: st.DrawFn, token: str) -> str:
    mark = draw(st.sampled_from(["", "", "**", "`", "*", "__"]))
    return f"{mark}{token}{mark}"


@st.composite
def echo(draw: st.DrawFn, name: str) -> str:
    """An echoed instruction: two or more of the policy's tokens offered as choices."""
    safe, bad = TOKENS[name]
    choices = draw(st.permutations(sorted({safe[0], *bad[:2]})))
    choices = choices[: draw(st.integers(min_value=2, max_value=len(choices)))]
    described = [
        draw(emphasised(token)) + draw(st.sampled_from(["", " (allowed)", " (a violation)"])) for token in choices
    ]
    joiner = draw(st.sampled_from([" or ", "/", " | "]))
    listed = (
        joiner.join(described)
        if joiner != " or " or len(described) == 2
        else (", ".join(described[:-1]) + " or " + described[-1])
    )
    frame = draw(
        st.sampled_from(
            [
                "Answer ({}):",
                "{}",
                "Classification ({}):",
                "Label [{}]",
                "Choose one of: {}",
                "**{}**",
                "Output ({}) =>",
                "{}?",
            ]
        )
    )
    return frame.format(listed)


@st.composite
def decision(draw: st.DrawFn, name: str, token: str) -> str:
    if name == "json" and draw(st.booleans()):
        violation = 0 if token == "SP0" else 1
        return json.dumps({"violation": violation, "policy_category": token.split(".")[0]})
    prefix = draw(st.sampled_from(["", "", "Answer: ", "Final answer: ", "**Verdict:** ", "Label -> "]))
    rationale = draw(st.sampled_from(["", "", " - see above", ": the message is short"]))
    return prefix + draw(emphasised(token)) + rationale


@st.composite
def wrapped(draw: st.DrawFn, violation: bool, noisy: bool) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(TOKENS)))
    token = draw(st.sampled_from(TOKENS[name][1 if violation else 0]))
    lines = [draw(echo(name)) for _ in range(draw(st.integers(min_value=0, max_value=2)))]
    lines += [draw(st.sampled_from(NEUTRAL)) for _ in range(draw(st.integers(min_value=0, max_value=2)))]
    if noisy:
        lines += draw(st.lists(st.text(max_size=40), max_size=2))
    lines = draw(st.permutations(lines))
    lines.insert(draw(st.integers(min_value=0, max_value=len(lines))), draw(decision(name, token)))
    return name, "\n".join(lines)


@FAST
@given(wrapped(violation=True, noisy=True))
def test_a_violation_is_never_read_as_safe_whatever_surrounds_it(case: tuple[str, str]) -> None:
    name, final = case

    verdict = read(final, POLICIES[name])

    assert not (verdict.status == "done" and verdict.violation is False), (final, verdict.notes)


@FAST
@given(wrapped(violation=False, noisy=True))
def test_a_safe_answer_is_never_read_as_a_violation(case: tuple[str, str]) -> None:
    name, final = case

    verdict = read(final, POLICIES[name])

    assert not (verdict.status == "done" and verdict.violation is True), (final, verdict.notes)


@FAST
@given(wrapped(violation=True, noisy=False))
def test_a_violation_inside_echoes_and_neutral_prose_is_read_as_a_violation(case: tuple[str, str]) -> None:
    name, final = case

    verdict = read(final, POLICIES[name])

    assert (verdict.status, verdict.violation) == ("done", True), (final, verdict.error, verdict.notes)


@FAST
@given(wrapped(violation=False, noisy=False))
def test_a_safe_decision_inside_echoes_and_neutral_prose_is_read_as_safe(case: tuple[str, str]) -> None:
    name, final = case

    verdict = read(final, POLICIES[name])

    assert (verdict.status, verdict.violation) == ("done", False), (final, verdict.error, verdict.notes)
