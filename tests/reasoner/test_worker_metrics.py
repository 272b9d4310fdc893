"""The reasoner worker's own metrics: engine latency, tokens, finish reasons and errors, observed by the
pipeline and served on SAFEGUARD_METRICS_PORT."""

from __future__ import annotations

import signal
import socket

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from console.models import Classification
from reasoner import metrics
from reasoner.pipeline import run_once
from safeguard import EngineError
from safeguard.engines.scripted import ScriptedEngine
from tests.factories import make_item, make_policy

pytestmark = pytest.mark.django_db


class Broken:
    name = "broken-engine"

    def generate(self, requests):
        raise EngineError("the GPU fell off the bus")


@pytest.fixture
def signal_handlers_restored():
    """The command installs its SIGTERM/SIGINT handlers; in-process, pytest's are put back after."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


def _served(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_the_worker_serves_engine_metrics_on_its_port_after_a_batch():
    version = make_policy()
    for content in ("buy now, limited offer", "see you at lunch #truncate", "hello #error"):
        make_item(versions=[version], content=content)
    server, thread = metrics.serve(0)
    port = server.server_address[1]
    try:
        before = _served(port)
        assert run_once(ScriptedEngine(), "w-metrics") == 3
        after = _served(port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    def added(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert added("console_engine_batch_duration_seconds_count") == 1
    assert added("console_engine_batch_duration_seconds_sum") >= 0
    assert added("console_engine_batch_size_sum") == 3
    assert added("console_engine_completions_total", finish_reason="stop") == 1
    assert added("console_engine_completions_total", finish_reason="length") == 1
    assert added("console_engine_completions_total", finish_reason="error") == 1
    # The errored completion generated nothing; the other two are counted as the rows store them.
    stored = Classification.objects.filter(prompt_tokens__isnull=False).aggregate(
        prompt=Sum("prompt_tokens"), written=Sum("completion_tokens"))
    assert added("console_engine_prompt_tokens_count") == 2
    assert added("console_engine_prompt_tokens_sum") == stored["prompt"] > 0
    assert added("console_engine_completion_tokens_count") == 2
    assert added("console_engine_completion_tokens_sum") == stored["written"] > 0
    assert added("console_engine_errors_total", kind="engine_error") == 0


def test_an_engine_that_fails_a_batch_counts_an_engine_error():
    make_item(versions=[make_policy()], content="hello")
    errors = {"kind": "engine_error"}
    before = REGISTRY.get_sample_value("console_engine_errors_total", errors)
    batches = REGISTRY.get_sample_value("console_engine_batch_duration_seconds_count")

    assert run_once(Broken(), "w-broken") == 1

    assert REGISTRY.get_sample_value("console_engine_errors_total", errors) == before + 1
    assert REGISTRY.get_sample_value("console_engine_batch_duration_seconds_count") == batches + 1


def test_the_worker_command_serves_metrics_on_the_configured_port_while_it_runs(settings, monkeypatch,
                                                                                signal_handlers_restored):
    settings.SAFEGUARD_BACKEND = ""  # no model: with --burst the command returns at once
    settings.SAFEGUARD_METRICS_PORT = 0
    started = []
    real_serve = metrics.serve

    def serve(port, addr):  # the real server, on a free port: 9464 may be taken on this machine
        server, thread = real_serve(0, addr)
        started.append((port, addr, server))
        return server, thread

    monkeypatch.setattr(metrics, "serve", serve)

    call_command("safeguard_worker", "--burst")
    assert started == []  # 0: off, the default

    call_command("safeguard_worker", "--burst", "--metrics-port", "9464")
    [(port, addr, server)] = started
    assert (port, addr) == (9464, "127.0.0.1")
    with pytest.raises(httpx.ConnectError):  # stopped when the command returned
        httpx.get(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=2)


def test_a_metrics_port_in_use_stops_the_worker_with_a_message(settings, signal_handlers_restored):
    settings.SAFEGUARD_BACKEND = ""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=f"metrics port {port} could not be opened"):
            call_command("safeguard_worker", "--burst", "--metrics-port", str(port))
