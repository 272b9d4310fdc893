from __future__ import annotations

import pytest

from safeguard import Completion, PolicySpec, Verdict, parse_completion
from tests.safeguard.helpers import BINARY_POLICY, SPAM_POLICY, VALIDITY_POLICY, harmony_tokens

ANALYSIS = "<|channel|>analysis<|message|>The user is advertising.<|end|>"


def token_completion(final: str, finish_reason: str = "stop") -> Completion:
    text = f"{ANALYSIS}<|start|>assistant<|channel|>final<|message|>{final}<|return|>"
    return Completion(key="k", token_ids=harmony_tokens(text), finish_reason=finish_reason)


def parse_final(final: str, policy: PolicySpec = SPAM_POLICY) -> Verdict:
    return parse_completion(token_completion(final), policy)


# --- bare 0 / 1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("final", "violation"),
    [("1", True), ("0", False), (" 1\n", True), ("**1**", True), ("`0`", False), ("1.", True), ('"0"', False)],
)
def test_it_reads_a_bare_digit(final: str, violation: bool) -> None:
    verdict = parse_final(final, BINARY_POLICY)

    assert verdict.status == "done"
    assert verdict.violation is violation
    assert verdict.label == ("1" if violation else "0")
    assert verdict.reasoning == "The user is advertising."


def test_it_reads_a_digit_followed_by_a_rationale() -> None:
    verdict = parse_final("1\nThe post pushes a fake giveaway.", BINARY_POLICY)

    assert (verdict.status, verdict.violation, verdict.rationale) == (
        "done",
        True,
        "The post pushes a fake giveaway.",
    )
    assert parse_final("0 - nothing promotional here", BINARY_POLICY).rationale == "nothing promotional here"
    assert parse_final("Answer: 1", BINARY_POLICY).violation is True


@pytest.mark.parametrize("final", ["0.5", "10", "2", "maybe", "n/a"])
def test_it_does_not_mistake_other_numbers_for_a_verdict(final: str) -> None:
    verdict = parse_final(final, BINARY_POLICY)

    assert verdict.status == "unparsable"
    assert verdict.violation is None


# --- label words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("final", "label", "violation"),
    [
        ("INVALID", "INVALID", True),
        ("VALID", "VALID", False),
        ("invalid", "INVALID", True),
        ("**VALID**", "VALID", False),
    ],
)
def test_it_reads_valid_and_invalid(final: str, label: str, violation: bool) -> None:
    verdict = parse_final(final, VALIDITY_POLICY)

    assert (verdict.status, verdict.label, verdict.violation, verdict.category) == ("done", label, violation, "")


def test_it_reads_a_label_word_with_a_rationale_after_it() -> None:
    verdict = parse_final("INVALID: the request asks for a refund to a gift card.", VALIDITY_POLICY)

    assert verdict.label == "INVALID"
    assert verdict.rationale == "the request asks for a refund to a gift card."


def test_it_does_not_read_lower_case_words_inside_prose_as_labels() -> None:
    verdict = parse_final("This seems like a valid question, hard to tell.", VALIDITY_POLICY)

    assert verdict.status == "unparsable"


def test_it_reads_the_policy_category_codes() -> None:
    verdict = parse_final("SP3", SPAM_POLICY)

    assert (verdict.label, verdict.category, verdict.violation, verdict.rule_ids) == ("SP3", "SP3", True, [])


def test_it_reads_rule_ids_and_maps_them_to_their_category() -> None:
    verdict = parse_final("SP2.a, SP2.b - link farm with a fake giveaway", SPAM_POLICY)

    assert verdict.status == "done"
    assert verdict.label == "SP2"
    assert verdict.category == "SP2"
    assert verdict.rule_ids == ["SP2.a", "SP2.b"]
    assert verdict.violation is True


def test_it_treats_a_zero_category_as_no_violation() -> None:
    verdict = parse_final("SP0", SPAM_POLICY)

    assert (verdict.label, verdict.violation) == ("SP0", False)


@pytest.mark.parametrize(
    ("labels", "final", "violation"),
    [
        (("SAFE", "SPAM"), "SAFE", False),
        (("SAFE", "SPAM"), "SPAM", True),
        (("NONE", "HATE"), "NONE", False),
        (("SP0", "SP10"), "SP10", True),
        (("S0", "S1"), "S0", False),
    ],
)
def test_it_decides_violation_from_category_names(labels: tuple[str, ...], final: str, violation: bool) -> None:
    policy = PolicySpec(text="p", output_format="label", label_scheme="categories", labels=labels)

    verdict = parse_final(final, policy)

    assert (verdict.status, verdict.label, verdict.violation) == ("done", final, violation)


def test_it_reads_category_codes_when_the_policy_lists_none() -> None:
    policy = PolicySpec(text="p", output_format="label", label_scheme="categories")

    verdict = parse_final("HS2.c", policy)

    assert (verdict.label, verdict.category, verdict.rule_ids, verdict.violation) == ("HS2", "HS2", ["HS2.c"], True)


# --- JSON ---------------------------------------------------------------------------------------------


def test_it_reads_the_json_the_policy_asks_for() -> None:
    verdict = parse_final(
        '{"violation": 1, "policy_category": "SP2", "rule_ids": ["SP2.a"], '
        '"confidence": "high", "rationale": "Link farm."}'
    )

    assert verdict == Verdict(
        status="done",
        label="SP2",
        violation=True,
        category="SP2",
        rule_ids=["SP2.a"],
        confidence=0.9,
        rationale="Link farm.",
        reasoning="The user is advertising.",
        raw_output=verdict.raw_output,
        quality="clean",
    )
    assert verdict.raw_output.startswith("<|channel|>analysis<|message|>")
    assert verdict.raw_output.endswith('"rationale": "Link farm."}<|return|>')


@pytest.mark.parametrize(
    ("value", "violation"),
    [("1", True), ("0", False), ("true", True), ("false", False), ('"1"', True), ('"0"', False), ('"yes"', True)],
)
def test_it_reads_every_spelling_of_the_violation_flag(value: str, violation: bool) -> None:
    verdict = parse_final('{"violation": ' + value + "}", BINARY_POLICY)

    assert (verdict.status, verdict.violation, verdict.label) == ("done", violation, "1" if violation else "0")


@pytest.mark.parametrize(
    ("value", "confidence"),
    [('"high"', 0.9), ('"Medium"', 0.6), ('"low"', 0.3), ("0.75", 0.75), ('"0.2"', 0.2), ("1", 1.0), ("7", None)],
)
def test_it_maps_confidence_words_and_numbers(value: str, confidence: float | None) -> None:
    verdict = parse_final('{"violation": 0, "confidence": ' + value + "}", BINARY_POLICY)

    assert verdict.confidence == confidence


def test_it_accepts_rule_ids_as_a_comma_separated_string() -> None:
    verdict = parse_final('{"violation": 1, "rule_ids": "SP2.a, SP2.b"}')

    assert verdict.rule_ids == ["SP2.a", "SP2.b"]
    assert verdict.category == "SP2"
    assert verdict.label == "SP2"


def test_it_splits_a_rule_id_given_as_the_category() -> None:
    verdict = parse_final('{"violation": 1, "policy_category": "SP2.b"}')

    assert (verdict.category, verdict.rule_ids) == ("SP2", ["SP2.b"])


def test_it_finds_json_inside_code_fences_and_prose() -> None:
    fenced = parse_final('```json\n{"violation": 1, "policy_category": "SP3"}\n```')
    chatty = parse_final('Sure {not json}. Here is my answer: {"violation": 0, "rationale": "a {brace} in text"} ok')

    assert (fenced.status, fenced.label, fenced.violation) == ("done", "SP3", True)
    assert (chatty.status, chatty.violation, chatty.rationale) == ("done", False, "a {brace} in text")
    assert chatty.label == "SP0"


def test_it_uses_the_policy_scheme_for_the_label() -> None:
    final = '{"violation": true, "policy_category": "SP2"}'

    assert parse_final(final, BINARY_POLICY).label == "1"
    assert parse_final(final, VALIDITY_POLICY).label == "INVALID"
    assert parse_final(final, SPAM_POLICY).label == "SP2"


def test_it_sends_json_whose_fields_disagree_to_a_person() -> None:
    verdict = parse_final('{"violation": 0, "policy_category": "SP3"}')

    assert (verdict.status, verdict.violation, verdict.label, verdict.quality) == (
        "conflicting", None, "", "conflicting"
    )
    assert "conflicting labels" in verdict.error


def test_it_takes_null_and_na_categories_as_no_category() -> None:
    verdict = parse_final('{"violation": 0, "policy_category": null, "rule_ids": []}')
    other = parse_final('{"violation": 0, "policy_category": "N/A"}')

    assert (verdict.status, verdict.violation, verdict.category, verdict.label) == ("done", False, "", "SP0")
    assert (other.violation, other.category) == (False, "")


def test_it_reads_a_json_label_key() -> None:
    assert parse_final('{"label": "INVALID"}', VALIDITY_POLICY).violation is True
    assert parse_final('{"label": "SP3", "confidence": 0.4}').label == "SP3"


def test_it_calls_json_without_any_verdict_field_unparsable() -> None:
    verdict = parse_final('{"confidence": "high", "rationale": "The content is VALID"}', VALIDITY_POLICY)

    assert verdict.status == "unparsable"
    assert verdict.violation is None


# --- harmony structure ----------------------------------------------------------------------------------


def test_it_recovers_the_final_channel_after_a_malformed_header() -> None:
    broken = "<|channel|>analysis<|message|>thinking<|end|><|start|><|channel|>final<|message|>1<|return|>"

    verdict = parse_completion(Completion(key="k", token_ids=harmony_tokens(broken)), BINARY_POLICY)

    assert (verdict.status, verdict.violation) == ("done", True)
    assert verdict.raw_output == broken
    assert verdict.reasoning == "thinking"


def test_it_recovers_a_final_message_swallowed_by_a_broken_analysis_header() -> None:
    broken = "<|channel|>analysis thinking<|end|><|start|>assistant<|channel|>final<|message|>0<|return|>"

    verdict = parse_completion(Completion(key="k", token_ids=harmony_tokens(broken)), BINARY_POLICY)

    assert (verdict.status, verdict.violation) == ("done", False)


def test_it_reads_a_final_header_with_a_constrain_marker() -> None:
    text = (
        f"{ANALYSIS}<|start|>assistant<|channel|>final <|constrain|>json<|message|>"
        '{"violation": 1, "policy_category": "SP3"}<|return|>'
    )

    verdict = parse_completion(Completion(key="k", token_ids=harmony_tokens(text)), SPAM_POLICY)

    assert (verdict.status, verdict.label) == ("done", "SP3")


def test_it_calls_a_completion_without_a_final_channel_unparsable() -> None:
    completion = Completion(key="k", token_ids=harmony_tokens(ANALYSIS), finish_reason="stop")

    verdict = parse_completion(completion, BINARY_POLICY)

    assert (verdict.status, verdict.violation) == ("unparsable", None)
    assert verdict.reasoning == "The user is advertising."
    assert verdict.raw_output == ANALYSIS


def test_it_calls_a_completion_cut_off_before_the_final_channel_truncated() -> None:
    cut = "<|channel|>analysis<|message|>Let me think about clause SP2.a and"
    completion = Completion(key="k", token_ids=harmony_tokens(cut), finish_reason="length")

    verdict = parse_completion(completion, SPAM_POLICY)

    assert (verdict.status, verdict.violation, verdict.label) == ("truncated", None, "")
    assert verdict.reasoning == "Let me think about clause SP2.a and"
    assert verdict.raw_output == cut


def test_it_calls_a_final_answer_cut_off_by_the_budget_truncated() -> None:
    cut = f'{ANALYSIS}<|start|>assistant<|channel|>final<|message|>{{"violation": 1, "policy_cat'
    completion = Completion(key="k", token_ids=harmony_tokens(cut), finish_reason="length")

    assert parse_completion(completion, SPAM_POLICY).status == "truncated"


def test_it_calls_a_header_cut_off_by_the_budget_truncated() -> None:
    cut = f"{ANALYSIS}<|start|>assistant<|channel|>fin"
    completion = Completion(key="k", token_ids=harmony_tokens(cut), finish_reason="length")

    assert parse_completion(completion, SPAM_POLICY).status == "truncated"


@pytest.mark.parametrize("tokens", [[], harmony_tokens("just some text without any harmony markers")])
def test_it_calls_empty_or_unstructured_output_unparsable(tokens: list[int]) -> None:
    verdict = parse_completion(Completion(key="k", token_ids=tokens), BINARY_POLICY)

    assert (verdict.status, verdict.violation, verdict.label) == ("unparsable", None, "")


def test_it_calls_an_empty_final_answer_unparsable() -> None:
    verdict = parse_final("   ", BINARY_POLICY)

    assert (verdict.status, verdict.violation) == ("unparsable", None)
    assert verdict.error


def test_it_reports_engine_errors_as_failed() -> None:
    verdict = parse_completion(Completion(key="k", finish_reason="error", error="CUDA OOM"), BINARY_POLICY)

    assert (verdict.status, verdict.error, verdict.violation) == ("failed", "CUDA OOM", None)


# --- HTTP completions -------------------------------------------------------------------------------------


def test_it_reads_http_completions_from_text_and_reasoning() -> None:
    completion = Completion(key="k", text='{"violation": 1, "policy_category": "SP2"}', reasoning="Looks like spam.")

    verdict = parse_completion(completion, SPAM_POLICY)

    assert (verdict.status, verdict.label, verdict.reasoning) == ("done", "SP2", "Looks like spam.")
    assert verdict.raw_output == '{"violation": 1, "policy_category": "SP2"}'


def test_it_splits_raw_harmony_text_returned_by_a_server_without_a_reasoning_parser() -> None:
    raw = f"{ANALYSIS}<|start|>assistant<|channel|>final<|message|>1<|return|>"
    stripped = "analysisThe user is advertising.assistantfinal0"

    with_tokens = parse_completion(Completion(key="k", text=raw), BINARY_POLICY)
    without_tokens = parse_completion(Completion(key="k", text=stripped), BINARY_POLICY)

    assert (with_tokens.violation, with_tokens.reasoning) == (True, "The user is advertising.")
    assert (without_tokens.violation, without_tokens.reasoning) == (False, "The user is advertising.")


def test_it_handles_http_completions_without_a_final_answer() -> None:
    cut = Completion(key="k", text=None, reasoning="still thinking", finish_reason="length")
    empty = Completion(key="k", text="", reasoning="done thinking")

    assert parse_completion(cut, BINARY_POLICY).status == "truncated"
    assert parse_completion(empty, BINARY_POLICY).status == "unparsable"
    assert parse_completion(empty, BINARY_POLICY).reasoning == "done thinking"


# --- cut answers, conflicts and how each answer was read -------------------------------------------


@pytest.mark.parametrize("final", ["INVALID", "VALID", '{"violation": 0}', "VALID\nRationale: a real"])
def test_it_calls_any_answer_the_budget_cut_truncated_whatever_labels_it_holds(final: str) -> None:
    completion = token_completion(final, finish_reason="length")

    verdict = parse_completion(completion, VALIDITY_POLICY)

    assert (verdict.status, verdict.violation, verdict.label, verdict.quality) == ("truncated", None, "", "truncated")
    assert "token budget" in verdict.error


def test_it_calls_a_final_answer_without_its_end_token_truncated() -> None:
    cut = f"{ANALYSIS}<|start|>assistant<|channel|>final<|message|>VALID"

    verdict = parse_completion(Completion(key="k", token_ids=harmony_tokens(cut)), VALIDITY_POLICY)

    assert (verdict.status, verdict.violation) == ("truncated", None)
    assert verdict.error == "the final answer stops without its end token"


def test_it_calls_an_http_answer_with_null_content_unparsable_with_its_reason() -> None:
    verdict = parse_completion(Completion(key="k", text=None, reasoning="It is spam.", finish_reason="stop"),
                               BINARY_POLICY)

    assert (verdict.status, verdict.violation, verdict.quality) == ("unparsable", None, "unparsable")
    assert verdict.error == "the completion has no final-channel answer"
    assert verdict.reasoning == "It is spam."


def test_it_records_how_each_answer_was_read() -> None:
    clean = parse_final("INVALID", VALIDITY_POLICY)
    echoed = parse_final("Answer (VALID or INVALID): INVALID", VALIDITY_POLICY)
    conflicting = parse_final("VALID\nAnswer: INVALID", VALIDITY_POLICY)

    assert (clean.quality, clean.notes) == ("clean", [])
    assert (echoed.status, echoed.violation, echoed.quality) == ("done", True, "recovered")
    assert "echoed label alternatives removed" in echoed.notes
    assert (conflicting.status, conflicting.quality, conflicting.violation) == ("conflicting", "conflicting", None)
    assert conflicting.error.startswith("conflicting labels")


def test_it_sends_a_safe_answer_whose_reasoning_concluded_a_violation_to_a_person() -> None:
    text = (
        "<|channel|>analysis<|message|>The post lists ten shop links: a link farm, SP2.a. So SP2.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>SP0<|return|>"
    )

    verdict = parse_completion(Completion(key="k", token_ids=harmony_tokens(text)), SPAM_POLICY)

    assert (verdict.status, verdict.violation) == ("conflicting", None)
    assert verdict.error.startswith("reasoning and answer disagree: the reasoning concludes SP2")
