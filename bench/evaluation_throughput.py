"""Evaluation runs: how fast a run settles through the reasoner's evaluation lane, and how much it delays
live items meanwhile.

    python3 dev.py manage bench_evaluation --examples 10000

In a scratch database (`<database>_bench`) with the Redis wake-up key and channel prefix renamed, as
bench_reasoner does. One reasoner worker process with a zero-latency simulated engine (bench_reasoner's
SimulatedGPU) serves both lanes. Live items arrive at a steady rate, first with no run going (the
baseline), then while a second run is going; each live item's delay is the time from its commit to
its verdict (`finished_at - created_at`). The first run goes alone, for the lane's throughput.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from typing import Any

from django.db import connections, transaction

from bench import scratch
from bench.reasoner_throughput import SAFE, SPAM, SimulatedGPU, _cpu_model, isolate_redis


def _serve(stop: Any) -> None:
    from reasoner.worker import Worker

    worker = Worker(SimulatedGPU(0.0), "bench-evaluation", batch_wait_s=0, sweep_every_s=1e9)
    threading.Thread(target=lambda: (stop.wait(), worker.stop()), daemon=True).start()
    worker.serve()
    connections.close_all()


def _seed(examples: int) -> tuple[Any, Any]:
    from evaluations.models import Example, LabeledSet, content_hash
    from policies_app import services as policy_services
    from policies_app.demo import load_policy_text

    version = policy_services.create_policy(
        actor=None, name="Bench evaluation policy", text=load_policy_text("spam-and-scams"),
        label_scheme="categories", labels=["SP0", "SP2", "SP3", "SP4"], output_format="json",
    )
    version = policy_services.publish_version(actor=None, policy=version.policy, version=version)
    labeled_set = LabeledSet.objects.create(policy=version.policy, name="bench")
    texts = SAFE * 2 + SPAM
    rows = []
    for n in range(examples):
        text = f"{texts[n % len(texts)]} (#{n})"
        spam = "click here" in text
        rows.append(Example(labeled_set=labeled_set, content=text, label="SP2" if spam else "SP0", violation=spam,
                            category="SP2" if spam else "SP0", content_hash=content_hash("message", text, None)))
    Example.objects.bulk_create(rows, batch_size=5000)
    return version, labeled_set


def _live(version: Any, rate: float, seconds: float, tag: str) -> list[int]:
    """Submit live items at `rate` per second for `seconds`; their classification ids."""
    from console import wakeup
    from console.models import Classification, Item, Stage

    ids = []
    interval = 1 / rate
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        with transaction.atomic():
            item = Item.objects.create(source="bench-live", external_id=f"{tag}-{n}", content=f"{SAFE[n % 4]} {n}")
            ids.append(Classification.objects.create(item=item, policy_version=version, stage=Stage.REASONER).pk)
        wakeup.wake_reasoner()
        n += 1
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return ids


def _delays_ms(ids: list[int], timeout: float = 120) -> list[float]:
    from console.models import Classification

    deadline = time.monotonic() + timeout
    while Classification.objects.filter(pk__in=ids, finished_at__isnull=True).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("live items were not classified in time")
        time.sleep(0.05)
    rows = Classification.objects.filter(pk__in=ids).values_list("created_at", "finished_at")
    return sorted((finished - created).total_seconds() * 1000 for created, finished in rows)


def _p(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def _run_until_done(labeled_set: Any, version: Any, live_rate: float = 0.0, version_tag: str = "") -> tuple[Any, float,
                                                                                                     list[int]]:
    """Start a run and wait for it; with `live_rate`, submit live items meanwhile. (run, wall s, live ids)."""
    from evaluations import runs
    from evaluations.models import RunStatus

    started = time.perf_counter()
    run = runs.start_run(actor=None, labeled_set=labeled_set, version=version)
    live_ids: list[int] = []
    while True:
        run.refresh_from_db()
        if run.status != RunStatus.RUNNING:
            return run, time.perf_counter() - started, live_ids
        if live_rate:
            live_ids += _live(version, live_rate, 0.5, f"{version_tag}-{len(live_ids)}")
        else:
            time.sleep(0.05)


def main(*, examples: int = 10000, rate: float = 20.0, seconds: float = 5.0, keep: bool = False,
         write: Any = print) -> dict[str, Any]:
    isolate_redis()
    name = f"{connections['default'].settings_dict['NAME']}_bench"
    scratch.use_database(name, recreate=True)
    try:
        version, labeled_set = _seed(examples)
        context = multiprocessing.get_context("fork")
        stop = context.Event()
        connections.close_all()
        worker = context.Process(target=_serve, args=(stop,))
        worker.start()
        try:
            time.sleep(1.0)  # the worker starts
            alone, wall, _ = _run_until_done(labeled_set, version)
            time.sleep(6.0)  # the worker counts live traffic as flowing for 5 s after it last saw some
            baseline = _delays_ms(_live(version, rate, seconds, "baseline"))
            during_run, during_wall, during_ids = _run_until_done(labeled_set, version, rate, "during")
            during = _delays_ms(during_ids)
        finally:
            stop.set()
            worker.join(timeout=60)
        result = {
            "examples": examples, "wall_s": wall, "examples_per_s": examples / wall,
            "settled": alone.metrics.get("examples"), "accuracy": alone.metrics.get("accuracy"),
            "with_live_examples_per_s": examples / during_wall,
            "baseline_p50_ms": _p(baseline, 0.5), "baseline_p95_ms": _p(baseline, 0.95),
            "during_p50_ms": _p(during, 0.5), "during_p95_ms": _p(during, 0.95),
            "live_items": (len(baseline), len(during)),
        }
        write(f"machine: {os.cpu_count()} cores, {_cpu_model()}; PostgreSQL and Redis on the same machine")
        write(f"run: {examples} examples, one worker, zero-latency engine; live items at {rate:g}/s")
        write(f"evaluation alone: {result['examples_per_s']:,.0f} examples/s end to end ({wall:.2f} s), "
              f"{result['settled']} settled, accuracy {result['accuracy']}")
        write(f"evaluation beside live traffic: {result['with_live_examples_per_s']:,.0f} examples/s "
              f"({during_wall:.2f} s, {during_run.metrics.get('examples')} settled)")
        for phase, key, values in (("without a run", "baseline", baseline), ("during the run", "during", during)):
            write(f"live delay {phase}: p50 {result[f'{key}_p50_ms']:.1f} ms, p95 {result[f'{key}_p95_ms']:.1f} ms "
                  f"({len(values)} items)")
        return result
    finally:
        if keep:
            write(f"kept the scratch database {name}")
        else:
            scratch.drop_database(name)
