"""Bulk ingestion through the real HTTP API: batches of 1,000 items POSTed to daphne, stored in
PostgreSQL, rate-limited and woken through Redis, scored and routed by the first pass.

    python3 dev.py manage bench_ingest                      # defaults: 50,000 items per phase
    python3 dev.py manage bench_ingest --servers 1 --clients 4

It works in a scratch database of its own (`<database>_bench_ingest`, dropped and made afresh each
run) with its own daphne processes, so the console's data and audit trail are never touched. Two
phases run against the same servers:

* routed: the policy has a first-pass model (trained on the public spam set, or a synthetic set when
  it is missing) and thresholds, so items are scored, some closed, the rest queued for the reasoner;
* cold start: a policy with no model yet, so every item is queued for the reasoner.

The client pre-encodes every request body, so the figures are the server's (and the database's).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.db import connections
from django.db.models import Count

from bench import scratch
from bench.firstpass import FILLERS, SPAM_SET, cpu_model

ROOT = Path(__file__).resolve().parents[1]
POLICY_TEXT = """# Spam
Answer 1 if the content is spam (unsolicited bulk promotion, scams, phishing), else 0.
- SP2.a Unsolicited promotion with a link.
- SP4.a Phishing for credentials or bank details.
- SP0.a Ordinary conversation, orders, support requests.
"""
SYNTHETIC = [
    ("Your order has shipped and should arrive on Monday.", False),
    ("Can we move the meeting to 3pm tomorrow?", False),
    ("Thanks for the report, I will read it tonight.", False),
    ("Does anyone know a good bakery near the station?", False),
    ("Here are the minutes from yesterday's call.", False),
    ("Buy now: cheap watches, click here www.deals.example", True),
    ("FREE MONEY!!! click here to claim your prize", True),
    ("Earn $$$ fast, recruit members and get paid for each sign up", True),
    ("Your account is locked, enter your password here to unlock it", True),
    ("Get 10,000 followers overnight, guaranteed, sign up today", True),
]


# --- the scratch database -----------------------------------------------------------------------


def use_scratch_database() -> tuple[str, str]:
    """Drop and create `<database>_bench_ingest`, point this process at it and migrate it; returns its
    name and a DATABASE_URL for the servers."""
    name = f"{settings.DATABASES['default']['NAME']}_bench_ingest"
    scratch.use_database(name, recreate=True)
    parts = urlsplit(settings.DATABASE_URL)
    return name, urlunsplit(parts._replace(path=f"/{name}"))


def drop_scratch_database(name: str) -> None:
    scratch.drop_database(name)


def texts_and_labels() -> list[tuple[str, bool]]:
    if SPAM_SET.exists():
        from safeguard import firstpass

        return [(e.text, e.violation) for e in firstpass.read_labeled_csv(SPAM_SET)]
    # Without ../shared the first pass trains on variations of a few synthetic lines: enough to time the
    # routing (which is what this bench measures), not to judge the model.
    print(f"note: the public spam set is missing ({SPAM_SET.resolve()}): the routed policy's first pass is "
          f"trained on {4 * len(SYNTHETIC)} synthetic examples instead", flush=True)
    return [(f"{text} (variant {n})", violation) for n in range(4) for text, violation in SYNTHETIC]


def seed(examples: list[tuple[str, bool]]) -> tuple[str, dict[str, Any]]:
    """Two published policies (one with a trained first pass and thresholds, one without) and a client;
    returns the client's token and what the routed policy was trained on."""
    from api import clients, routing, training
    from policies_app import services as policy_services
    from safeguard import firstpass

    versions = {}
    for name in ("Bench routed", "Bench cold start"):
        draft = policy_services.create_policy(actor=None, name=name, text=POLICY_TEXT, label_scheme="binary",
                                              output_format="binary")
        versions[name] = policy_services.publish_version(actor=None, policy=draft.policy, version=draft)
    routed = versions["Bench routed"]
    training.import_labeled_examples(
        actor=None, actor_name="system:bench", policy=routed.policy, dataset="bench",
        examples=[firstpass.LabeledText(text, violation) for text, violation in examples],
    )
    model = training.retrain_first_pass(policy=routed.policy, force=True)
    if model is None:
        raise SystemExit(f"the first pass would not train on {len(examples)} examples "
                         f"(FIRST_PASS_MIN_EXAMPLES is {settings.FIRST_PASS_MIN_EXAMPLES})")
    threshold = model.metrics["cv"]["proposal"]["threshold"]
    routing.set_routing_rule(actor=None, version=routed, safe_below=threshold, violation_above=1.0,
                              sample_rate=0.02, violations_to_humans=False)
    _, token = clients.create_client(actor=None, name="Bench", rate_limit_per_minute=10_000_000,
                                     allowed_policies=[v.policy for v in versions.values()])
    return token, {"examples": model.n_examples, "safe_below": threshold}


# --- the servers ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_servers(count: int, database_url: str, static_root: str) -> tuple[list[subprocess.Popen], list[str]]:
    env = {
        # Servers never connect as the owner (whose DATABASE_OWNER_URL names the console's database).
        **{k: v for k, v in os.environ.items() if k != "DATABASE_OWNER_URL"},
        "DATABASE_URL": database_url,
        "STATIC_ROOT": static_root,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "API_PERIODIC_JOBS": "false",  # no retraining or sweeping chains from a scratch database
        "LOG_LEVEL": "WARNING",
    }
    daphne = str(Path(sys.executable).parent / "daphne")
    processes, urls = [], []
    for _ in range(count):
        port = _free_port()
        processes.append(subprocess.Popen(
            [daphne, "-b", "127.0.0.1", "-p", str(port), "--verbosity", "0", "console.asgi:application"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        ))
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    for process, url in zip(processes, urls, strict=True):
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"daphne exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/api/v1/schema.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"daphne at {url} did not answer within 60 s")
            time.sleep(0.2)
    return processes, urls


def stop_servers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


# --- the load -------------------------------------------------------------------------------------


def bodies(examples: list[tuple[str, bool]], *, prefix: str, batches: int, batch: int, policy: str) -> list[bytes]:
    import json

    rng = random.Random(prefix)
    out = []
    for b in range(batches):
        items = [
            {"external_id": f"{prefix}-{b}-{i}",
             "content": f"{rng.choice(examples)[0]}{rng.choice(FILLERS)} #{rng.randrange(10**6)}"}
            for i in range(batch)
        ]
        out.append(json.dumps({"items": items, "policies": [policy]}).encode())
    return out


def send(urls: list[str], token: str, payloads: list[bytes], clients: int, batch: int) -> tuple[float, list[float]]:
    """POST every payload (each to the next server in turn) from `clients` threads; wall time and the
    latency of each request."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    position = iter(range(len(payloads)))

    def worker() -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with httpx.Client(timeout=120) as http:
            while True:
                with lock:
                    index = next(position, None)
                if index is None:
                    return
                started = time.perf_counter()
                response = http.post(f"{urls[index % len(urls)]}/api/v1/items/batch", content=payloads[index],
                                     headers=headers)
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 201 or response.json()["created"] != batch:
                        failures.append(f"{response.status_code}: {response.text[:300]}")

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, first: {failures[0]}")
    return wall, sorted(latencies)


def phase(name: str, *, urls: list[str], token: str, examples: list[tuple[str, bool]], policy: str, items: int,
          batch: int, clients: int, write: Callable[[str], Any]) -> dict[str, Any]:
    from api.models import Route
    from audit.models import AuditEvent
    from console.models import Classification, Item

    batches = max(1, items // batch)
    warmup = bodies(examples, prefix=f"warm-{name}", batches=2 * len(urls), batch=batch, policy=policy)
    send(urls, token, warmup, clients=len(urls), batch=batch)  # first requests load code, models, connections
    payloads = bodies(examples, prefix=f"run-{name}", batches=batches, batch=batch, policy=policy)
    before = Item.objects.count()
    wall, latencies = send(urls, token, payloads, clients, batch)
    stored = Item.objects.count() - before
    total = batches * batch
    routes = dict(
        Route.objects.filter(item__external_id__startswith=f"run-{name}-").values_list("route").annotate(n=Count("id"))
        .values_list("route", "n")
    )
    result = {
        "phase": name, "items": total, "stored": stored, "wall_s": wall, "items_per_s": total / wall,
        "p50_ms": statistics.median(latencies) * 1000, "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "routes": routes,
        "queued": Classification.objects.filter(stage="reasoner", status="queued",
                                                item__external_id__startswith=f"run-{name}-").count(),
        "audit_events": AuditEvent.objects.filter(action="item.created").count(),
    }
    write(f"{name}: {total:,} items in {wall:.2f} s = {result['items_per_s']:,.0f} items/s "
          f"(batch of {batch}: p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms); "
          f"stored {stored:,}; routes {routes}")
    return result


def main(*, items: int = 50_000, batch: int = 1000, servers: int = 2, clients: int = 4, keep: bool = False,
         write: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    name, database_url = use_scratch_database()
    processes: list[subprocess.Popen] = []
    try:
        examples = texts_and_labels()
        token, trained = seed(examples)
        connections.close_all()
        with tempfile.TemporaryDirectory() as static_root:
            processes, urls = start_servers(servers, database_url, static_root)
            write(f"machine: {os.cpu_count()} cores, {cpu_model()}; PostgreSQL, Redis, {servers} daphne "
                  f"process{'es' if servers != 1 else ''} and the {clients}-thread client on the same machine")
            write(f"first pass trained on {trained['examples']} labelled items; closes below {trained['safe_below']}"
                  f" (recall 0.95 in cross-validation), samples 2% of closed items for quality checks")
            results = [
                phase("routed", urls=urls, token=token, examples=examples, policy="bench-routed", items=items,
                      batch=batch, clients=clients, write=write),
                phase("cold start", urls=urls, token=token, examples=examples, policy="bench-cold-start",
                      items=items, batch=batch, clients=clients, write=write),
            ]
            stop_servers(processes)
            processes = []
        return results
    finally:
        stop_servers(processes)
        if keep:
            write(f"kept the scratch database {name}")
        else:
            drop_scratch_database(name)
