"""Answer reading under real published policies: OpenAI's spam policy and the teen-safety policy pack.

The policies ask for VALID / INVALID *and* define codes (DC0..DC3, SP0..SP4), so models answer in
both, often after repeating the policy's own instruction line. The labels come from each policy's
validation set; the answer forms are ours. The files live in ../shared/data (not in a user's clone:
these tests skip there, saying so).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from safeguard import Completion, PolicySpec, Verdict, parse_completion
from safeguard.instructions import instruction_warnings
from safeguard.labels import is_safe_label
from tests.safeguard.helpers import harmony_tokens

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
TEEN = DATA / "teen-safety"
SPAM = DATA / "spam-policy"
TEEN_SLUGS = ["dangerous-content", "dangerous-roleplay", "graphic-sexual-content", "graphic-violent-content"]


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"the public policy data is missing ({path.resolve()}); these tests need ../shared/data")
    return path


def teen_policy(slug: str, scheme: str = "categories") -> PolicySpec:
    text = need(TEEN / "example_policies" / slug / "policy.md").read_text()
    codes = tuple(dict.fromkeys(re.findall(r"`([A-Z]{2}\d)`", text)))
    if scheme == "valid_invalid":
        return PolicySpec(text=text, output_format="label", label_scheme="valid_invalid", labels=("VALID", "INVALID"))
    return PolicySpec(text=text, output_format="label", label_scheme="categories", labels=codes)


def teen_labels(slug: str) -> list[str]:
    with need(TEEN / "datasets" / f"{slug}.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))[2:]  # a disclaimer row, then the header
    return sorted({cell for row in rows for cell in (row[1], row[3]) if re.fullmatch(r"[A-Z]{2}\d", cell)})


def instruction_line(policy: PolicySpec) -> str:
    return next(line for line in policy.text.splitlines() if "`VALID`" in line and "`INVALID`" in line)


def read(final: str, policy: PolicySpec, analysis: str = "Weighing the policy.") -> Verdict:
    text = f"<|channel|>analysis<|message|>{analysis}<|end|><|start|>assistant<|channel|>final<|message|>"
    return parse_completion(Completion(key="k", token_ids=harmony_tokens(text + final + "<|return|>")), policy)


FORMS = [
    "{code}",
    "**{code}**",
    "{instruction}\n{code}",
    "{instruction}\n\n**{code}**",
    "{validity} ({code})",
    "Answer (VALID or INVALID): {validity}\nCode: {code}",
    "Label ({codes}): {code}",
    "{code}\n\nRationale: the example matches the policy's description of {code}.",
]


@pytest.mark.parametrize("slug", TEEN_SLUGS)
def test_every_label_of_a_teen_safety_set_is_read_back_through_echoes_of_its_policy(slug: str) -> None:
    policy = teen_policy(slug)
    instruction = instruction_line(policy)
    labels = teen_labels(slug)
    assert len(labels) >= 3

    for code in labels:
        safe = is_safe_label(code)
        validity = "VALID" if safe else "INVALID"
        for form in FORMS:
            final = form.format(code=code, instruction=instruction, validity=validity, codes=" or ".join(policy.labels))
            verdict = read(final, policy)
            assert (verdict.status, verdict.violation, verdict.category) == ("done", not safe, code), (
                final,
                verdict.error,
            )


@pytest.mark.parametrize("slug", TEEN_SLUGS)
def test_a_teen_safety_answer_that_pairs_valid_with_a_violating_code_goes_to_a_person(slug: str) -> None:
    policy = teen_policy(slug)
    violating = [code for code in teen_labels(slug) if not is_safe_label(code)]

    for code in violating:
        for final in (f"VALID ({code})", f"{instruction_line(policy)}\nVALID\n{code}", f"VALID\n\nCode: {code}.a"):
            verdict = read(final, policy)
            assert (verdict.status, verdict.violation) == ("conflicting", None), final


@pytest.mark.parametrize("slug", TEEN_SLUGS)
def test_an_echoed_teen_safety_instruction_alone_is_no_verdict(slug: str) -> None:
    policy = teen_policy(slug)

    verdict = read(instruction_line(policy), policy)

    assert (verdict.status, verdict.violation) == ("unparsable", None)


@pytest.mark.parametrize("slug", TEEN_SLUGS)
def test_the_editor_warns_that_teen_safety_policies_mix_valid_invalid_and_codes(slug: str) -> None:
    as_categories = instruction_warnings(teen_policy(slug))
    as_validity = instruction_warnings(teen_policy(slug, "valid_invalid"))

    assert any("VALID or INVALID as well as the codes" in warning for warning in as_categories)
    assert any("also defines the codes" in warning for warning in as_validity)


def spam_policy() -> PolicySpec:
    text = need(SPAM / "policy.txt").read_text()
    return PolicySpec(text=text, output_format="label", label_scheme="categories", labels=("SP0", "SP2", "SP3", "SP4"))


def spam_labels() -> list[str]:
    with need(SPAM / "golden_dataset.csv").open(newline="") as handle:
        return sorted({row[9] for row in csv.reader(handle) if len(row) > 9 and re.fullmatch(r"SP\d", row[9])})


def test_every_label_of_the_spam_set_is_read_in_the_forms_the_spam_policy_invites() -> None:
    policy = spam_policy()
    labels = spam_labels()
    assert labels == ["SP0", "SP2", "SP3", "SP4"]

    for code in labels:
        safe = is_safe_label(code)
        forms = [
            code,
            f"D-{code}, R-SP0",
            f"Output: {'VALID' if safe else 'INVALID'}\n{code}",
            f"Classify each EXAMPLE as VALID (no spam) or INVALID (spam): {'VALID' if safe else 'INVALID'} ({code})",
        ]
        for final in forms:
            verdict = read(final, policy)
            assert (verdict.status, verdict.violation, verdict.category) == ("done", not safe, code), final


def test_the_spam_policys_escalate_output_is_a_violation() -> None:
    verdict = read("❌ Output: INVALID + ESCALATE", spam_policy())

    assert (verdict.status, verdict.violation) == ("done", True)


def test_a_spam_answer_whose_reasoning_concluded_spam_is_not_read_as_safe() -> None:
    analysis = "The message pushes a crypto giveaway to strangers. That is SP4 fraud. So INVALID."

    verdict = read("VALID", spam_policy(), analysis=analysis)

    assert verdict.status == "conflicting"
    assert "reasoning and answer disagree" in verdict.error
