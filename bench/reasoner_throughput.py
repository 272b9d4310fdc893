"""Reasoner throughput: how fast the batch pipeline settles queued work, and how busy it keeps a GPU.

Run it with the console's services (see bench/README.md):

    python3 dev.py manage bench_reasoner --items 20000                   # zero-latency engine
    python3 dev.py manage bench_reasoner --items 3200 --latency 1.4      # a simulated H100

It works in a scratch database of its own (`<database>_bench`, dropped and made afresh each run), so the
console's data and its append-only audit trail are never touched, and it renames the Redis wake-up key
and the channel-layer prefix so a running console neither sees nor steals its work.

The engine is simulated: pre-encoded harmony completions (the scripted engine's answers, encoded once
per policy and verdict) returned after a fixed latency per batch, whatever its size, much as a GPU
decodes a batch of 64 in about the time it takes to decode one.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import connections, transaction

import safeguard
from bench import scratch
from safeguard.engines.scripted import default_responder, encode_reply

STEPS = ("claim", "render", "engine", "parse", "write", "notify")
SPAM = ("Buy now: cheap watches, click here www.example.test", "FREE MONEY!!! click here to claim")
SAFE = (
    "Does anyone know a good bakery near the station?",
    "Thanks for the help yesterday, the fix worked.",
    "Meeting moved to 3pm, same room.",
    "I think the second chapter drags a bit but the ending is great.",
)


class SimulatedGPU:
    """An engine that answers every batch after `latency_s`, with completions encoded in advance."""

    name = "bench-simulated-gpu"

    def __init__(self, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.busy_s = 0.0
        self.batch_sizes: list[int] = []
        self._replies: dict[tuple[safeguard.PolicySpec, bool], list[int]] = {}

    def _reply(self, request: safeguard.Request) -> list[int]:
        key = (request.policy, "click here" in request.content.text)
        tokens = self._replies.get(key)
        if tokens is None:
            tokens = self._replies[key] = encode_reply(default_responder(request))
        return tokens

    def generate(self, requests: Sequence[safeguard.Request]) -> list[safeguard.Completion]:
        started = time.perf_counter()
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        completions = []
        for request in requests:
            tokens = self._reply(request)
            completions.append(
                safeguard.Completion(
                    key=request.key, token_ids=tokens, prompt_tokens=request.prompt.total_tokens,
                    completion_tokens=len(tokens), model=self.name, latency_s=self.latency_s,
                )
            )
        self.busy_s += time.perf_counter() - started
        self.batch_sizes.append(len(requests))
        return completions


# --- the scratch database -----------------------------------------------------------------------


def use_scratch_database() -> str:
    """Drop and create `<database>_bench`, point this process at it, and migrate it."""
    name = f"{settings.DATABASES['default']['NAME']}_bench"
    scratch.use_database(name, recreate=True)
    return name


def drop_scratch_database(name: str) -> None:
    scratch.drop_database(name)


def isolate_redis() -> None:
    """Bench workers wake on their own key and broadcast under their own prefix."""
    from console import wakeup

    wakeup.WAKE_KEY = "console:bench:reasoner:wake"
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = "console-bench"


def seed(items: int, policies: int) -> list[int]:
    """`items` queued items, each with one classification per policy (bulk: setting up is not measured)."""
    from console.models import Classification, Item, Stage
    from policies_app import services as policy_services
    from policies_app.demo import load_policy_text

    versions = []
    for n in range(policies):
        version = policy_services.create_policy(
            actor=None, name=f"Bench spam policy {n + 1}", text=load_policy_text("spam-and-scams"),
            label_scheme="categories", labels=["SP0", "SP2", "SP3", "SP4"], output_format="json",
        )
        versions.append(policy_services.publish_version(actor=None, policy=version.policy, version=version))
    texts = SAFE * 2 + SPAM  # one in five is spam
    chunk = 5000
    with transaction.atomic():
        for start in range(0, items, chunk):
            batch = Item.objects.bulk_create(
                [Item(source="bench", external_id=f"bench-{n}", content=f"{texts[n % len(texts)]} (#{n})")
                 for n in range(start, min(items, start + chunk))]
            )
            Classification.objects.bulk_create(
                [Classification(item=item, policy_version=v, stage=Stage.REASONER) for item in batch for v in versions]
            )
    return [v.pk for v in versions]


# --- the workers --------------------------------------------------------------------------------


def _work(index: int, latency_s: float, batch_size: int, serial: bool, results: Any) -> None:
    """One worker process: a simulated GPU and the reasoner loop, until the queue is empty."""
    from reasoner.pipeline import Pipeline
    from reasoner.worker import Worker

    engine = SimulatedGPU(latency_s)
    worker_id = f"bench-{index}"
    started = time.perf_counter()
    if serial:
        pipeline = Pipeline(engine, worker_id, batch_size=batch_size)
        while True:
            batch = pipeline.claim()
            if not len(batch):
                break
            completions, error = pipeline.generate(batch)
            pipeline.finish(batch, completions, error)
    else:
        worker = Worker(engine, worker_id, batch_size=batch_size, batch_wait_s=0, sweep_every_s=1e9)
        worker.serve(burst=True)
        pipeline = worker.pipeline
    wall = time.perf_counter() - started
    connections.close_all()
    results.put({
        "wall_s": wall, "busy_s": engine.busy_s, "batches": engine.batch_sizes, "items": pipeline.counts["items"],
        "timings": dict(pipeline.timings),
    })


def measure(*, items: int, latency_s: float, batch_size: int, workers: int, serial: bool) -> dict[str, Any]:
    from audit.models import AuditEvent
    from console.models import Classification

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    connections.close_all()  # each child opens its own connection
    started = time.perf_counter()
    children = [context.Process(target=_work, args=(n, latency_s, batch_size, serial, results)) for n in range(workers)]
    for child in children:
        child.start()
    reports = [results.get(timeout=3600) for _ in children]
    wall = time.perf_counter() - started
    for child in children:
        child.join()
    done = Classification.objects.filter(status="done").count()
    done_events = AuditEvent.objects.filter(action="classification.done").count()
    return {"wall_s": wall, "reports": reports, "done": done, "done_events": done_events}


# --- the report --------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def report(result: dict[str, Any], *, classifications: int, latency_s: float, batch_size: int, workers: int,
           serial: bool, write: Any) -> None:
    reports = result["reports"]
    wall = result["wall_s"]
    totals = {step: sum(r["timings"].get(step, 0.0) for r in reports) for step in STEPS}
    # The commit hook that broadcasts runs inside the write step's clock; show it on its own line.
    totals["write"] -= totals["notify"]
    sizes = [size for r in reports for size in r["batches"]]
    write(f"machine: {os.cpu_count()} cores, {_cpu_model()}; PostgreSQL and Redis on the same machine")
    write(
        f"run: {classifications} classifications, batches of {batch_size}, engine latency {latency_s * 1000:.0f} ms "
        f"per batch, {workers} worker process{'es' if workers != 1 else ''}, "
        f"{'serial (no overlap)' if serial else 'pipelined'}"
    )
    write(f"settled: {result['done']} done, {result['done_events']} done events (expected {classifications} each)")
    write(f"throughput: {classifications / wall:,.0f} classifications/s end to end ({wall:.2f} s wall)")
    write(f"batches: {len(sizes)}, mean size {sum(sizes) / max(1, len(sizes)):.1f}")
    for n, r in enumerate(reports):
        write(f"  worker {n}: {r['items']} items in {r['wall_s']:.2f} s, engine busy {r['busy_s'] / r['wall_s']:.1%}")
    write("per classification, summed over workers (steps overlap when pipelined):")
    for step in STEPS:
        write(f"  {step:<7} {totals[step] / classifications * 1e6:8.1f} µs")
    write(f"  {'total':<7} {sum(totals.values()) / classifications * 1e6:8.1f} µs")



def main(*, items: int = 20000, latency_s: float = 0.0, batch_size: int = 64, workers: int = 1, policies: int = 1,
         serial: bool = False, keep: bool = False, write: Any = print) -> dict[str, Any]:
    isolate_redis()
    name = use_scratch_database()
    try:
        seed(items, policies)
        result = measure(items=items, latency_s=latency_s, batch_size=batch_size, workers=workers, serial=serial)
        report(result, classifications=items * policies, latency_s=latency_s, batch_size=batch_size,
               workers=workers, serial=serial, write=write)
        return result
    finally:
        if keep:
            write(f"kept the scratch database {name}")
        else:
            drop_scratch_database(name)
