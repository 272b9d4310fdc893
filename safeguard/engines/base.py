"""What every engine promises, its configuration, and how one is chosen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from safeguard.completion import Completion, Request
from safeguard.engines.endpoints import split_urls

BACKENDS = ("vllm", "openai", "scripted")


class EngineError(RuntimeError):
    """A whole batch failed (the engine could not run at all); per-item failures are Completions."""


@runtime_checkable
class Engine(Protocol):
    """Turns rendered requests into completions.

    `generate` returns exactly one Completion per request, in request order. A
    failure that concerns one item comes back as Completion(finish_reason="error");
    only a failure of the whole batch raises EngineError.
    """

    name: str

    def generate(self, requests: Sequence[Request]) -> list[Completion]: ...


@dataclass
class EngineConfig:
    """Engine settings; `backend` "" means no engine is configured.

    base_url names the OpenAI-compatible server, or several: a list, or one string
    separated by commas or whitespace (the HTTP engine spreads requests over them).
    vllm_kwargs go straight to vllm.LLM (gpu_memory_utilization,
    tensor_parallel_size, ...). retry_backoff_s is the first back-off of the HTTP
    engine, doubled on each retry; temperature 0 keeps verdicts reproducible.
    """

    backend: str = ""
    model: str = "openai/gpt-oss-safeguard-20b"
    base_url: str | Sequence[str] = ""
    api_key: str = ""
    timeout_s: float = 120
    max_retries: int = 3
    concurrency: int = 32
    max_tokens: int = 4096
    context_tokens: int = 131072
    vllm_kwargs: dict[str, Any] = field(default_factory=dict)
    scripted_latency_s: float = 0.0
    retry_backoff_s: float = 0.5
    temperature: float = 0.0

    @property
    def base_urls(self) -> tuple[str, ...]:
        """base_url as its separate servers, without trailing slashes."""
        return split_urls(self.base_url)


def load_engine(config: EngineConfig) -> Engine | None:
    """Build the engine named by `config.backend`; None when no backend is configured."""
    backend = config.backend.strip().lower()
    if not backend:
        return None
    # Imported here so that choosing one backend never imports another's dependencies.
    if backend == "vllm":
        from safeguard.engines.vllm_engine import VLLMEngine

        return VLLMEngine(config)
    if backend == "openai":
        from safeguard.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(config)
    if backend == "scripted":
        from safeguard.engines.scripted import ScriptedEngine

        return ScriptedEngine(latency_s=config.scripted_latency_s)
    raise ValueError(f"unknown engine backend {config.backend!r}; expected one of: {', '.join(BACKENDS)}")
