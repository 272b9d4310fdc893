from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from reasoner.engine import engine_config, get_engine
from safeguard.engines.openai_engine import OpenAIEngine
from safeguard.engines.scripted import ScriptedEngine


def test_it_builds_no_engine_when_no_backend_is_configured(settings):
    settings.SAFEGUARD_BACKEND = ""
    assert get_engine() is None


def test_it_names_the_known_backends_when_the_backend_is_unknown(settings):
    settings.SAFEGUARD_BACKEND = "gpt-9000"
    with pytest.raises(ImproperlyConfigured, match="'gpt-9000' is not a known engine backend.*'vllm'.*'openai'"):
        get_engine()


def test_it_builds_the_scripted_engine_once_with_the_configured_latency(settings):
    settings.SAFEGUARD_BACKEND = "scripted"
    settings.SAFEGUARD_SCRIPTED_LATENCY_S = 0.25
    engine = get_engine()
    assert isinstance(engine, ScriptedEngine)
    assert engine.latency_s == 0.25
    assert get_engine() is engine


def test_it_passes_the_vllm_settings_through(settings):
    settings.SAFEGUARD_VLLM_GPU_MEMORY_UTILIZATION = 0.5
    settings.SAFEGUARD_VLLM_TENSOR_PARALLEL_SIZE = 2
    settings.SAFEGUARD_CONTEXT_TOKENS = 8192
    config = engine_config()
    assert config.vllm_kwargs == {"gpu_memory_utilization": 0.5, "tensor_parallel_size": 2}
    assert config.context_tokens == 8192


def test_it_reads_several_base_urls_from_one_setting(settings):
    settings.SAFEGUARD_BACKEND = "openai"
    settings.SAFEGUARD_BASE_URL = "http://vllm-1:8000/v1, http://vllm-2:8000/v1 http://vllm-3:8000/v1/"

    assert engine_config().base_urls == ("http://vllm-1:8000/v1", "http://vllm-2:8000/v1", "http://vllm-3:8000/v1")
    engine = get_engine()
    assert isinstance(engine, OpenAIEngine)
    assert [e.base_url for e in engine.pool.endpoints] == list(engine_config().base_urls)


def test_it_keeps_a_single_base_url_working(settings):
    settings.SAFEGUARD_BACKEND = "openai"
    settings.SAFEGUARD_BASE_URL = "http://vllm:8000/v1/"

    assert engine_config().base_urls == ("http://vllm:8000/v1",)
    engine = get_engine()
    assert isinstance(engine, OpenAIEngine)
    assert engine.url == "http://vllm:8000/v1/chat/completions"
