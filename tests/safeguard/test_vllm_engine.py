from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from safeguard import EngineConfig, EngineError, load_engine, parse_completion, stop_token_ids
from safeguard.engines.scripted import default_responder, encode_reply
from safeguard.engines.vllm_engine import VLLMEngine
from safeguard.vocab import get_encoding
from tests.safeguard.helpers import BINARY_POLICY, SPAM_POLICY, make_request


@dataclass
class CompletionOutput:
    """Shaped like vllm.outputs.CompletionOutput."""

    index: int
    text: str
    token_ids: Sequence[int]
    cumulative_logprob: float | None
    logprobs: Any
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    """Shaped like vllm.outputs.RequestOutput."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int] | None
    prompt_logprobs: Any
    outputs: list[CompletionOutput]
    finished: bool


@dataclass
class SamplingParams:
    max_tokens: int
    temperature: float
    stop_token_ids: list[int]
    detokenize: bool = True


@dataclass
class FakeLLM:
    """Stands in for vllm.LLM: answers with real harmony tokens chosen from the prompt text.

    The reply comes from the scripted engine's responder, applied to the content it
    finds in the prompt, so directives such as #verdict=1 steer it here too.
    """

    finish_reason: str = "stop"
    fail_with: Exception | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)

    def generate(
        self,
        prompts: Sequence[dict[str, list[int]]],
        sampling_params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        use_tqdm: bool = True,
        lora_request: Any = None,
        priority: list[int] | None = None,
    ) -> list[RequestOutput]:
        self.calls.append({"prompts": prompts, "sampling_params": sampling_params, "use_tqdm": use_tqdm})
        if self.fail_with is not None:
            raise self.fail_with
        encoding = get_encoding()
        outputs = []
        for index, prompt in enumerate(prompts):
            text = encoding.decode(prompt["prompt_token_ids"])
            user_text = text.split("<|start|>user<|message|>")[1].split("<|end|>")[0]
            reply = default_responder(make_request(user_text, BINARY_POLICY))
            tokens = encode_reply(reply)
            if self.finish_reason == "stop":
                tokens = tokens[:-1]  # vLLM leaves the special stop token out of the output
            outputs.append(
                RequestOutput(
                    request_id=str(index),
                    prompt=None,
                    prompt_token_ids=prompt["prompt_token_ids"],
                    prompt_logprobs=None,
                    outputs=[
                        CompletionOutput(0, "", tuple(tokens), None, None, self.finish_reason, stop_token_ids()[0])
                    ],
                    finished=True,
                )
            )
        return outputs


def make_engine(llm: FakeLLM, **config: Any) -> VLLMEngine:
    return VLLMEngine(EngineConfig(backend="vllm", **config), llm=llm, sampling_params_factory=SamplingParams)


def test_it_sends_a_batch_in_one_generate_call_and_keeps_the_order() -> None:
    llm = FakeLLM()
    engine = make_engine(llm)
    requests = [make_request(f"#verdict={i % 2} item {i}", BINARY_POLICY, key=f"k{i}") for i in range(7)]

    completions = engine.generate(requests)

    assert len(llm.calls) == 1
    assert llm.calls[0]["use_tqdm"] is False
    assert llm.calls[0]["prompts"] == [{"prompt_token_ids": r.prompt.token_ids} for r in requests]
    assert [c.key for c in completions] == [f"k{i}" for i in range(7)]
    verdicts = [parse_completion(c, BINARY_POLICY) for c in completions]
    assert [v.violation for v in verdicts] == [bool(i % 2) for i in range(7)]
    assert all(v.status == "done" for v in verdicts)


def test_it_passes_stop_tokens_max_tokens_and_temperature() -> None:
    llm = FakeLLM()
    make_engine(llm, temperature=0.0).generate([make_request("x", max_tokens=300), make_request("y", max_tokens=300)])

    params = llm.calls[0]["sampling_params"]
    assert isinstance(params, SamplingParams)
    assert params.max_tokens == 300
    assert params.stop_token_ids == stop_token_ids()
    assert params.temperature == 0.0
    assert params.detokenize is False


def test_it_passes_one_sampling_params_per_prompt_when_budgets_differ() -> None:
    llm = FakeLLM()
    make_engine(llm).generate([make_request("a", max_tokens=100), make_request("b", max_tokens=200)])

    params = llm.calls[0]["sampling_params"]
    assert [p.max_tokens for p in params] == [100, 200]


def test_it_fills_token_ids_counts_and_finish_reason() -> None:
    request = make_request("click here", SPAM_POLICY)

    completion = make_engine(FakeLLM()).generate([request])[0]

    assert completion.token_ids is not None and completion.text is None
    assert completion.prompt_tokens == request.prompt.total_tokens
    assert completion.completion_tokens == len(completion.token_ids)
    assert completion.finish_reason == "stop"
    assert completion.model == "openai/gpt-oss-safeguard-20b"
    assert parse_completion(completion, BINARY_POLICY).violation is True


def test_it_puts_back_the_stop_token_vllm_leaves_out_so_a_closed_answer_is_not_read_as_cut() -> None:
    completion = make_engine(FakeLLM()).generate([make_request("click here", SPAM_POLICY)])[0]

    assert completion.token_ids is not None
    assert completion.token_ids[-1] == stop_token_ids()[0]
    assert parse_completion(completion, BINARY_POLICY).status == "done"


def test_it_passes_length_finishes_through() -> None:
    completion = make_engine(FakeLLM(finish_reason="length")).generate([make_request("#truncate")])[0]

    assert completion.finish_reason == "length"
    assert parse_completion(completion, BINARY_POLICY).status == "truncated"


def test_it_turns_an_aborted_output_into_an_item_error() -> None:
    completion = make_engine(FakeLLM(finish_reason="abort")).generate([make_request("x")])[0]

    assert completion.finish_reason == "error"
    assert "abort" in completion.error


def test_it_fails_only_the_item_whose_prompt_does_not_fit() -> None:
    llm = FakeLLM()
    short, huge = make_request("short", key="short"), make_request("word " * 300, key="huge")
    engine = make_engine(llm, context_tokens=short.prompt.total_tokens + 50)

    completions = engine.generate([huge, short])

    assert [c.key for c in completions] == ["huge", "short"]
    assert completions[0].finish_reason == "error"
    assert "context" in completions[0].error
    assert completions[1].finish_reason == "stop"
    assert len(llm.calls[0]["prompts"]) == 1
    # The budget is clipped to what is left of the context.
    assert llm.calls[0]["sampling_params"].max_tokens == 50


def test_it_raises_engine_error_when_the_batch_fails() -> None:
    engine = make_engine(FakeLLM(fail_with=RuntimeError("CUDA out of memory")))

    with pytest.raises(EngineError, match="CUDA out of memory"):
        engine.generate([make_request("x")])


def test_it_does_not_call_vllm_for_an_empty_batch() -> None:
    llm = FakeLLM()

    assert make_engine(llm).generate([]) == []
    assert llm.calls == []


def test_it_imports_vllm_only_when_it_builds_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail, as on CI

    make_engine(FakeLLM())  # an injected model needs no vllm
    with pytest.raises(EngineError, match=r"\.\[gpu\]"):
        load_engine(EngineConfig(backend="vllm"))


def test_it_builds_vllm_llm_with_prefix_caching(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, Any] = {}

    class FakeVllmModule:
        SamplingParams = SamplingParams

        @staticmethod
        def LLM(**kwargs: Any) -> FakeLLM:
            built.update(kwargs)
            return FakeLLM()

    monkeypatch.setitem(sys.modules, "vllm", FakeVllmModule)

    engine = load_engine(EngineConfig(backend="vllm", vllm_kwargs={"gpu_memory_utilization": 0.8}))

    assert isinstance(engine, VLLMEngine)
    assert built == {
        "model": "openai/gpt-oss-safeguard-20b",
        "gpu_memory_utilization": 0.8,
        "enable_prefix_caching": True,
        "max_model_len": 131072,
    }
