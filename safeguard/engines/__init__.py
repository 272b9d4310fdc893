"""Model backends: vLLM in-process, any OpenAI-compatible server, and a scripted stand-in.

Backend modules are imported lazily by load_engine, so importing this package
never pulls in vLLM (or CUDA).
"""

from __future__ import annotations

from safeguard.engines.base import BACKENDS, Engine, EngineConfig, EngineError, load_engine

__all__ = ["BACKENDS", "Engine", "EngineConfig", "EngineError", "load_engine"]
