"""A stored raw output turns back into the completion it came from, and reads to the same verdict."""

from __future__ import annotations

import pytest

from safeguard import Completion, parse_completion
from safeguard.engines.scripted import ScriptedEngine
from safeguard.rereading import reading_of, stored_completion
from tests.safeguard.helpers import BINARY_POLICY, SPAM_POLICY, VALIDITY_POLICY, make_request


@pytest.mark.parametrize("content", ["click here", "hello", "#echo #verdict=1", "#conflict", "#unparsable"])
def test_a_stored_token_answer_reads_back_to_the_same_verdict(content: str) -> None:
    completion = ScriptedEngine().generate([make_request(content, SPAM_POLICY)])[0]
    first = parse_completion(completion, SPAM_POLICY)

    again = parse_completion(stored_completion(first.raw_output, first.reasoning, False), SPAM_POLICY)

    assert (again.status, again.violation, again.label, again.quality) == (
        first.status,
        first.violation,
        first.label,
        first.quality,
    )
    assert again.raw_output == first.raw_output


def test_a_stored_truncated_answer_stays_truncated() -> None:
    completion = ScriptedEngine().generate([make_request("#truncate", BINARY_POLICY)])[0]
    first = parse_completion(completion, BINARY_POLICY)

    again = parse_completion(stored_completion(first.raw_output, first.reasoning, True), BINARY_POLICY)

    assert (first.status, again.status) == ("truncated", "truncated")


def test_a_stored_http_answer_reads_back_with_its_reasoning() -> None:
    first = parse_completion(
        Completion(key="k", text="VALID", reasoning="It sells followers. So INVALID."), VALIDITY_POLICY
    )

    again = parse_completion(stored_completion(first.raw_output, first.reasoning, False), VALIDITY_POLICY)

    assert (first.status, again.status) == ("conflicting", "conflicting")
    assert again.reasoning == "It sells followers. So INVALID."


def test_it_names_what_a_result_says() -> None:
    assert [reading_of("done", True), reading_of("done", False), reading_of("conflicting", None)] == [
        "violation",
        "safe",
        "conflicting",
    ]
