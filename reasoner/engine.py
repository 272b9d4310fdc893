"""The one model engine of a process, built from the SAFEGUARD_* settings (see README: Engines).

Only the reasoner worker builds an engine: loading a model is expensive (vLLM takes the GPU), so a
process builds it once and keeps it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

import safeguard
from safeguard.engines import BACKENDS

NO_ENGINE_MESSAGE = (
    "No model is configured (SAFEGUARD_BACKEND is empty), so reasoner work waits in the queue. "
    "Set SAFEGUARD_BACKEND=openai with SAFEGUARD_BASE_URL=http://<server>/v1 for an OpenAI-compatible "
    "server, or SAFEGUARD_BACKEND=vllm on a GPU machine, then restart the worker (README: Engines)."
)

_built: tuple[safeguard.EngineConfig, safeguard.Engine] | None = None


def engine_config() -> safeguard.EngineConfig:
    """The engine configuration the settings describe."""
    return safeguard.EngineConfig(
        backend=settings.SAFEGUARD_BACKEND,
        model=settings.SAFEGUARD_MODEL,
        base_url=settings.SAFEGUARD_BASE_URL,
        api_key=settings.SAFEGUARD_API_KEY,
        timeout_s=settings.SAFEGUARD_TIMEOUT_S,
        max_retries=settings.SAFEGUARD_MAX_RETRIES,
        concurrency=settings.SAFEGUARD_CONCURRENCY,
        max_tokens=settings.SAFEGUARD_MAX_TOKENS,
        context_tokens=settings.SAFEGUARD_CONTEXT_TOKENS,
        vllm_kwargs={
            "gpu_memory_utilization": settings.SAFEGUARD_VLLM_GPU_MEMORY_UTILIZATION,
            "tensor_parallel_size": settings.SAFEGUARD_VLLM_TENSOR_PARALLEL_SIZE,
        },
        scripted_latency_s=settings.SAFEGUARD_SCRIPTED_LATENCY_S,
    )


def get_engine() -> safeguard.Engine | None:
    """The process's engine, built on first use; None when no backend is configured.

    Built again only if the settings changed (tests override them), never per call: a vLLM engine
    holds the GPU for the life of the process.
    """
    global _built
    config = engine_config()
    if not config.backend:
        return None
    if config.backend.lower() not in BACKENDS:
        raise ImproperlyConfigured(
            f"SAFEGUARD_BACKEND={config.backend!r} is not a known engine backend: use "
            f"{' or '.join(repr(b) for b in BACKENDS if b != 'scripted')}, or leave it empty for none "
            "(README: Engines)"
        )
    if _built is not None and _built[0] == config:
        return _built[1]
    engine = safeguard.load_engine(config)
    if engine is None:
        return None
    _built = (config, engine)
    return engine
