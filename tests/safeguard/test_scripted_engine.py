from __future__ import annotations

import json
import time

import pytest
from openai_harmony import Message, Role

from safeguard import (
    Completion,
    Content,
    Engine,
    EngineConfig,
    PolicySpec,
    Request,
    Turn,
    Verdict,
    load_engine,
    parse_completion,
    render_prompt,
)
from safeguard.engines.openai_engine import OpenAIEngine
from safeguard.engines.scripted import ScriptedEngine, ScriptedReply, encode_reply
from safeguard.vocab import get_encoding
from tests.safeguard.helpers import BINARY_POLICY, SPAM_POLICY, VALIDITY_POLICY, make_request


def run(text: str, policy: PolicySpec = SPAM_POLICY) -> tuple[Completion, Verdict]:
    request = make_request(text, policy)
    completion = ScriptedEngine().generate([request])[0]
    return completion, parse_completion(completion, policy)


def test_it_answers_with_real_harmony_tokens() -> None:
    reply = ScriptedReply("Checked the rules.", '{"violation": 0}')
    encoding = get_encoding()
    analysis = encoding.render(Message.from_role_and_content(Role.ASSISTANT, reply.analysis).with_channel("analysis"))
    final = encoding.render(Message.from_role_and_content(Role.ASSISTANT, reply.final).with_channel("final"))
    return_token = encoding.encode("<|return|>", allowed_special="all")

    # The prompt ends in <|start|>assistant, so the completion starts at <|channel|>; it ends in <|return|>.
    assert encode_reply(reply) == analysis[2:] + final[:-1] + return_token
    assert encoding.decode(encode_reply(reply)) == (
        "<|channel|>analysis<|message|>Checked the rules.<|end|>"
        '<|start|>assistant<|channel|>final<|message|>{"violation": 0}<|return|>'
    )


def test_it_flags_spam_phrases_and_clears_other_content() -> None:
    completion, spam = run("FREE MONEY, click here")
    _, clean = run("What time does the store open?")

    assert completion.finish_reason == "stop"
    assert completion.model == "scripted-test-engine"
    assert completion.completion_tokens == len(completion.token_ids)
    assert (spam.status, spam.violation, spam.label) == ("done", True, "SP2")
    assert (clean.status, clean.violation, clean.label) == ("done", False, "SP0")
    assert "keyword rule" in spam.reasoning


def test_it_answers_in_the_policy_output_format() -> None:
    binary, _ = run("buy now", BINARY_POLICY)
    label, _ = run("buy now", VALIDITY_POLICY)
    as_json, _ = run("buy now", SPAM_POLICY)
    encoding = get_encoding()

    def final_of(completion: Completion) -> str:
        assert completion.token_ids is not None
        return encoding.decode(completion.token_ids).split("<|channel|>final<|message|>")[1].removesuffix("<|return|>")

    assert final_of(binary) == "1"
    assert final_of(label) == "INVALID"
    assert json.loads(final_of(as_json))["policy_category"] == "SP2"


@pytest.mark.parametrize(
    ("text", "policy", "violation", "label"),
    [
        ("#verdict=1 a harmless greeting", SPAM_POLICY, True, "SP2"),
        ("#verdict=0 buy now", BINARY_POLICY, False, "0"),
        ("#label=SP3 hello", SPAM_POLICY, True, "SP3"),
        ("#label=SP0 free money", SPAM_POLICY, False, "SP0"),
        ("#label=VALID click here", VALIDITY_POLICY, False, "VALID"),
    ],
)
def test_it_follows_verdict_and_label_directives(text: str, policy: PolicySpec, violation: bool, label: str) -> None:
    _, verdict = run(text, policy)

    assert (verdict.status, verdict.violation, verdict.label) == ("done", violation, label)


def test_it_names_the_rule_of_a_label_directive() -> None:
    _, verdict = run("#label=SP2.a see my site")

    assert (verdict.category, verdict.rule_ids) == ("SP2", ["SP2.a"])
    assert "#label=SP2.a" in verdict.reasoning


@pytest.mark.parametrize(
    ("directive", "finish_reason", "status"),
    [
        ("#unparsable", "stop", "unparsable"),
        ("#truncate", "length", "truncated"),
        ("#empty", "stop", "unparsable"),
        ("#error", "error", "failed"),
    ],
)
def test_it_produces_the_failure_modes_on_request(directive: str, finish_reason: str, status: str) -> None:
    completion, verdict = run(f"buy now {directive}")

    assert completion.finish_reason == finish_reason
    assert verdict.status == status
    assert verdict.violation is None


def test_it_reads_directives_in_conversation_turns() -> None:
    content = Content(kind="conversation", turns=(Turn("user", "hi"), Turn("assistant", "#verdict=1")))
    request = Request("c", BINARY_POLICY, content, render_prompt(BINARY_POLICY, content), 64)

    verdict = parse_completion(ScriptedEngine().generate([request])[0], BINARY_POLICY)

    assert verdict.violation is True


def test_it_sleeps_for_slow_items_and_batch_latency() -> None:
    started = time.perf_counter()
    completions = ScriptedEngine(latency_s=0.05).generate([make_request("#slow=0.1 x"), make_request("y")])
    elapsed = time.perf_counter() - started

    assert 0.15 <= elapsed < 1.0
    assert [c.key for c in completions] == ["item-1", "item-1"]
    assert completions[0].latency_s >= 0.15


def test_it_returns_one_completion_per_request_in_order() -> None:
    requests = [make_request(f"#verdict={i % 2} item {i}", BINARY_POLICY, key=f"k{i}") for i in range(20)]

    completions = ScriptedEngine().generate(requests)
    verdicts = [parse_completion(c, BINARY_POLICY) for c in completions]

    assert [c.key for c in completions] == [f"k{i}" for i in range(20)]
    assert [v.violation for v in verdicts] == [bool(i % 2) for i in range(20)]


def test_it_uses_a_custom_responder() -> None:
    engine = ScriptedEngine(responder=lambda request: ScriptedReply(f"saw {request.key}", "1"), name="mine")

    completion = engine.generate([make_request("anything", BINARY_POLICY, key="abc")])[0]

    assert engine.name == "mine"
    assert parse_completion(completion, BINARY_POLICY).reasoning == "saw abc"


def test_it_is_built_only_for_the_scripted_backend() -> None:
    engine = load_engine(EngineConfig(backend="scripted", scripted_latency_s=0.25))

    assert isinstance(engine, ScriptedEngine)
    assert engine.latency_s == 0.25
    assert load_engine(EngineConfig()) is None
    assert load_engine(EngineConfig(backend="  ")) is None


def test_it_rejects_an_unknown_backend_by_name() -> None:
    with pytest.raises(ValueError, match="unknown engine backend 'tgi'.*vllm, openai, scripted"):
        load_engine(EngineConfig(backend="tgi"))


def test_it_and_the_other_engines_satisfy_the_engine_protocol() -> None:
    assert isinstance(ScriptedEngine(), Engine)
    assert isinstance(OpenAIEngine(EngineConfig(backend="openai", base_url="http://127.0.0.1:1/v1")), Engine)


@pytest.mark.parametrize("policy", [SPAM_POLICY, BINARY_POLICY, VALIDITY_POLICY])
def test_it_echoes_the_instruction_and_the_answer_is_still_read(policy: PolicySpec) -> None:
    engine = ScriptedEngine()

    bad = parse_completion(engine.generate([make_request("#echo #verdict=1", policy)])[0], policy)
    good = parse_completion(engine.generate([make_request("#echo #verdict=0", policy)])[0], policy)

    assert (bad.status, bad.violation, bad.quality) == ("done", True, "recovered")
    assert (good.status, good.violation, good.quality) == ("done", False, "recovered")


@pytest.mark.parametrize("policy", [SPAM_POLICY, BINARY_POLICY, VALIDITY_POLICY])
def test_its_conflicting_and_disagreeing_answers_go_to_a_person(policy: PolicySpec) -> None:
    engine = ScriptedEngine()

    conflict = parse_completion(engine.generate([make_request("#conflict", policy)])[0], policy)
    disagree = parse_completion(engine.generate([make_request("#disagree", policy)])[0], policy)

    assert (conflict.status, conflict.violation) == ("conflicting", None)
    assert (disagree.status, disagree.violation) == ("conflicting", None)
    assert disagree.error.startswith("reasoning and answer disagree")
