"""The model engine of the moderation console: plain Python, no Django.

It renders harmony prompts for gpt-oss-safeguard (policy first, then content),
runs them on an engine (vLLM, an OpenAI-compatible server, or a scripted
stand-in), and reads the completions into verdicts.
"""

from __future__ import annotations

from safeguard.completion import Completion, Request
from safeguard.engines.base import Engine, EngineConfig, EngineError, load_engine
from safeguard.parse import parse_completion
from safeguard.prompt import RenderedPrompt, content_text, count_tokens, render_prompt, stop_token_ids
from safeguard.specs import Content, PolicySpec, Turn
from safeguard.verdict import Verdict
from safeguard.vocab import ensure_vocab

__all__ = [
    "Completion",
    "Content",
    "Engine",
    "EngineConfig",
    "EngineError",
    "PolicySpec",
    "RenderedPrompt",
    "Request",
    "Turn",
    "Verdict",
    "content_text",
    "count_tokens",
    "ensure_vocab",
    "load_engine",
    "parse_completion",
    "render_prompt",
    "stop_token_ids",
]
