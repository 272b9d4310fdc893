"""Every answer of the project's corpus is read as the model meant it, or goes to a person."""

from __future__ import annotations

import pytest

from safeguard import Completion, Verdict, parse_completion
from tests.safeguard.answer_corpus import CASES, POLICIES, Case
from tests.safeguard.helpers import harmony_tokens

STATUS = {"violation": "done", "safe": "done", "conflicting": "conflicting", "unparsable": "unparsable"}


def read(case: Case) -> Verdict:
    analysis = case.analysis or "Checking the content against the policy."
    text = f"<|channel|>analysis<|message|>{analysis}<|end|><|start|>assistant<|channel|>final<|message|>"
    text += f"{case.final}<|return|>"
    return parse_completion(Completion(key="k", token_ids=harmony_tokens(text)), POLICIES[case.policy])


def test_the_corpus_holds_at_least_300_answer_forms_of_every_kind() -> None:
    assert len({(case.policy, case.final, case.analysis) for case in CASES}) >= 300
    assert {case.expect for case in CASES} == set(STATUS)
    assert {case.policy for case in CASES} == set(POLICIES)


@pytest.mark.parametrize("case", CASES, ids=[f"{n}-{c.policy}-{c.expect}" for n, c in enumerate(CASES)])
def test_it_reads_each_answer_as_meant_or_sends_it_to_a_person(case: Case) -> None:
    verdict = read(case)

    assert verdict.status == STATUS[case.expect], (case.final, verdict.error, verdict.notes)
    if case.expect in ("violation", "safe"):
        assert verdict.violation is (case.expect == "violation"), case.final
        assert verdict.quality in ("clean", "recovered")
        if case.category is not None:
            assert verdict.category == case.category
        if case.rules is not None:
            assert tuple(verdict.rule_ids) == case.rules
        if case.quality is not None:
            assert verdict.quality == case.quality, verdict.notes
    else:
        assert verdict.violation is None
        assert verdict.label == ""
        assert verdict.quality == case.expect
        assert verdict.error, "a result without a verdict says why"
