"""In-process GPU inference with vLLM, fed with our own harmony token ids.

vllm is an optional dependency (the ``.[gpu]`` extra) and is imported only when
this engine is built without an injected ``llm``. We pass token prompts rather
than text so the prompt vLLM sees is exactly the one rendered (and counted) by
safeguard.prompt, and so prefix caching can reuse the policy part across items.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from safeguard.completion import Completion, Request
from safeguard.engines.base import EngineConfig, EngineError
from safeguard.prompt import stop_token_ids

_FINISH_REASONS = {"stop": "stop", "length": "length"}


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise EngineError(
            "the vllm backend needs vLLM installed (pip install '.[gpu]' on a machine with a GPU)"
        ) from exc
    return vllm


def build_llm(config: EngineConfig) -> Any:
    """Construct vllm.LLM for the configured model, prefix caching on unless told otherwise."""
    vllm = _import_vllm()
    kwargs = dict(config.vllm_kwargs)
    kwargs.setdefault("enable_prefix_caching", True)
    kwargs.setdefault("max_model_len", config.context_tokens)
    return vllm.LLM(model=config.model, **kwargs)


class VLLMEngine:
    """Batches requests into one ``LLM.generate`` call per ``generate``."""

    def __init__(
        self,
        config: EngineConfig,
        llm: Any = None,
        sampling_params_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config
        self.name = config.model
        self._llm = llm if llm is not None else build_llm(config)
        self._make_sampling_params = sampling_params_factory or _import_vllm().SamplingParams

    def _sampling_params(self, max_tokens: int) -> Any:
        return self._make_sampling_params(
            max_tokens=max_tokens,
            temperature=self.config.temperature,
            stop_token_ids=stop_token_ids(),
            # We parse token ids ourselves; detokenizing in vLLM would be wasted CPU.
            detokenize=False,
        )

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        results: list[Completion | None] = [None] * len(requests)
        positions: list[int] = []
        prompts: list[dict[str, list[int]]] = []
        budgets: list[int] = []
        for position, request in enumerate(requests):
            room = self.config.context_tokens - request.prompt.total_tokens
            if room <= 0:
                # vLLM would reject the whole batch for one overlong prompt; fail only this item.
                results[position] = Completion(
                    key=request.key,
                    finish_reason="error",
                    error=(
                        f"prompt has {request.prompt.total_tokens} tokens, "
                        f"the context holds {self.config.context_tokens}"
                    ),
                    prompt_tokens=request.prompt.total_tokens,
                    model=self.name,
                )
                continue
            positions.append(position)
            prompts.append({"prompt_token_ids": request.prompt.token_ids})
            budgets.append(min(request.max_tokens or self.config.max_tokens, room))

        if prompts:
            by_budget = {budget: self._sampling_params(budget) for budget in set(budgets)}
            if len(by_budget) == 1:
                sampling: Any = next(iter(by_budget.values()))
            else:
                sampling = [by_budget[budget] for budget in budgets]
            started = time.perf_counter()
            try:
                outputs = list(self._llm.generate(prompts, sampling, use_tqdm=False))
            except Exception as exc:  # whatever vLLM raises, the batch as a whole failed
                raise EngineError(f"vLLM generate failed: {exc}") from exc
            elapsed = time.perf_counter() - started
            if len(outputs) != len(prompts):
                raise EngineError(f"vLLM returned {len(outputs)} outputs for {len(prompts)} prompts")
            for position, output in zip(positions, outputs, strict=True):
                results[position] = self._completion(requests[position], output, elapsed)
        return [completion for completion in results if completion is not None]

    def _completion(self, request: Request, output: Any, elapsed: float) -> Completion:
        choices = getattr(output, "outputs", None) or []
        prompt_ids = getattr(output, "prompt_token_ids", None)
        prompt_tokens = len(prompt_ids) if prompt_ids is not None else request.prompt.total_tokens
        if not choices:
            return Completion(
                key=request.key,
                finish_reason="error",
                error="vLLM returned no output for this prompt",
                prompt_tokens=prompt_tokens,
                model=self.name,
                latency_s=elapsed,
            )
        choice = choices[0]
        token_ids = [int(token) for token in choice.token_ids]
        finish = _FINISH_REASONS.get(str(choice.finish_reason), "error")
        stops = stop_token_ids()
        if finish == "stop" and (not token_ids or token_ids[-1] not in stops):
            # vLLM leaves the matched stop token out of token_ids; put it back, so that the parser can
            # tell a final answer the model closed from one that was cut off (which is "truncated").
            stop_reason = getattr(choice, "stop_reason", None)
            token_ids.append(stop_reason if isinstance(stop_reason, int) and stop_reason in stops else stops[0])
        return Completion(
            key=request.key,
            token_ids=token_ids,
            finish_reason=finish,
            error="" if finish != "error" else f"vLLM finished with {choice.finish_reason!r}",
            prompt_tokens=prompt_tokens,
            completion_tokens=len(token_ids),
            model=self.name,
            latency_s=elapsed,
        )
