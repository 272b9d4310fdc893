"""Review pages under load: queue and item page server time with 1,000,000 items (100,000 awaiting
review), and the time from a verdict stored to its row appearing in an open browser.

    python3 dev.py manage bench_review_pages                 # fill (first run only) and measure
    python3 dev.py manage bench_review_pages --refill        # build the data again
    python3 dev.py manage bench_review_pages --requests 500  # more requests per page kind

It works in a database of its own, `console_bench_review` on the same server (made and filled on the
first run, kept for the next), never the console's own. Filling uses set-based SQL (INSERT ... SELECT
FROM generate_series): a minute or two for a million items, their classifications and 150,000 reviews.
Redis keys and the channel-layer prefix are renamed, so a running console sees none of it.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from bench import scratch

DATABASE = "console_bench_review"
PREFIX = "console-bench-review"
ITEMS = 1_000_000
AWAITING_EVERY = 10  # one item in ten awaits review: 100,000
REASONING = (
    "The policy asks whether the message promotes something unsolicited or tries to deceive. The message "
    "links to an outside shop and pushes a time-limited discount to people who did not ask for it, which "
    "matches SP2.a (unsolicited promotion with a link). It does not ask for money, credentials or personal "
    "data, so SP3 does not apply. It is one message, not a pattern across threads, so SP4 is out of scope. "
    "Nothing suggests it is a user sharing a product they made in a place meant for that (SP0.a). "
) * 3


# --- the database ---------------------------------------------------------------------------------------


def use_bench_database(refill: bool) -> bool:
    """Point this process at the bench database (made and migrated when missing or `refill`); whether
    it must be filled."""
    scratch.use_database(DATABASE, recreate=refill)
    from console.models import Item

    return not Item.objects.exists()


def isolate() -> None:
    from console import wakeup

    wakeup.WAKE_KEY = "console:bench-review:reasoner:wake"
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = PREFIX
    os.environ["CHANNELS_PREFIX"] = PREFIX  # for the server process


FILL_SQL = [
    # A million items over the last ~23 days, oldest first; one in eight is a conversation.
    """
    INSERT INTO console_item (kind, source, external_id, content, turns, metadata, created_at)
    SELECT CASE WHEN g %% 8 = 0 THEN 'conversation' ELSE 'message' END,
           (ARRAY['forum', 'chat', 'marketplace', 'api'])[1 + (g / 10) %% 4],
           'bench-' || g,
           CASE WHEN g %% 8 = 0 THEN '' ELSE
               (ARRAY['Flash sale! 70%% off watches at shop-' || g || '.example, today only',
                      'Does anyone know a good bakery near the station? (' || g || ')',
                      'Your account is locked, confirm your password at secure-' || g || '.example',
                      'Thanks for the help yesterday, the fix worked (#' || g || ')'])[1 + (g / 3) %% 4] END,
           CASE WHEN g %% 8 = 0 THEN jsonb_build_array(
               jsonb_build_object('role', 'user', 'content', 'hey, want cheap followers? message ' || g),
               jsonb_build_object('role', 'assistant', 'content', 'No thanks.')) END,
           '{}'::jsonb,
           now() - make_interval(secs => (%(items)s - g) * 2)
    FROM generate_series(1, %(items)s) AS g
    """,
    # One classification per item, of type t. Every tenth item awaits review: mostly reasoner verdicts,
    # then results without a verdict, quality-check samples of the first pass, escalations. Of the
    # rest, two in nine were reviewed and decided, the others needed no one.
    """
    INSERT INTO console_classification (item_id, policy_version_id, stage, status, label, violation, category,
        rule_ids, confidence, rationale, reasoning, raw_output, error, model_name, prompt_tokens,
        completion_tokens, latency_ms, needs_review, review_status, attempts, worker, created_at, started_at,
        finished_at)
    SELECT id, (%(versions)s::bigint[])[1 + id %% 3],
           CASE WHEN t = 'qc' THEN 'fast' ELSE 'reasoner' END,
           CASE WHEN t IN ('unparsable', 'truncated') THEN t ELSE 'done' END,
           CASE WHEN t IN ('unparsable', 'truncated') THEN '' WHEN v THEN 'SP2' ELSE 'SP0' END,
           CASE WHEN t IN ('unparsable', 'truncated') THEN NULL ELSE v END,
           CASE WHEN t IN ('unparsable', 'truncated') THEN '' WHEN v THEN 'SP2' ELSE 'SP0' END,
           CASE WHEN v THEN '["SP2.a"]'::jsonb ELSE '[]'::jsonb END,
           CASE WHEN t IN ('unparsable', 'truncated') THEN NULL WHEN t = 'qc' THEN 0.01 + (id %% 8) / 100.0
                WHEN v THEN 0.55 + (id %% 45) / 100.0 ELSE 0.15 + (id %% 35) / 100.0 END,
           CASE WHEN v THEN 'Links to a shop with a discount nobody asked for (SP2.a).' ELSE 'Ordinary talk.' END,
           CASE WHEN t = 'qc' THEN '' WHEN id %% 10 = 0 THEN %(reasoning)s ELSE left(%(reasoning)s, 240) END,
           '', CASE WHEN t IN ('unparsable', 'truncated') THEN 'the answer could not be read' ELSE '' END,
           CASE WHEN t = 'qc' THEN 'first-pass #1' ELSE 'gpt-oss-safeguard-20b' END, 900, 350, 1400,
           t <> 'closed',
           CASE WHEN t = 'decided' THEN 'decided' WHEN t = 'escalated' THEN 'escalated' ELSE 'open' END,
           1, 'bench', created_at, created_at, created_at + interval '2 seconds'
    FROM (SELECT id, created_at, t,
                 CASE WHEN t = 'qc' THEN false WHEN id %% 10 = 0 THEN (id / 10) %% 5 < 3 ELSE id %% 5 < 2 END AS v
          FROM (SELECT id, created_at,
                       CASE WHEN id %% 10 = 0 THEN
                                CASE (id / 10) %% 20 WHEN 0 THEN 'unparsable' WHEN 1 THEN 'truncated'
                                     WHEN 2 THEN 'qc' WHEN 3 THEN 'qc' WHEN 4 THEN 'escalated' ELSE 'verdict' END
                            WHEN id %% 10 IN (3, 7) THEN 'decided' ELSE 'closed' END AS t
                FROM console_item) AS typed) AS i
    """,
    # The decided ones' reviews: four in five approved, the rest overridden with a reason.
    """
    INSERT INTO console_review (classification_id, decision, label, category, reason, misapplied_rule,
        reviewer_id, created_at)
    SELECT c.id, CASE WHEN c.id %% 5 = 0 THEN 'override' ELSE 'approve' END,
           CASE WHEN c.id %% 5 = 0 THEN CASE WHEN c.violation THEN 'SP0' ELSE 'SP2' END ELSE '' END,
           '',
           CASE WHEN c.id %% 5 = 0 THEN (ARRAY['quoting a scam to warn others', 'own product, showcase thread',
                'missed the hidden link'])[1 + c.id %% 3] ELSE '' END,
           CASE WHEN c.id %% 5 = 0 AND c.violation THEN 'SP2.a' ELSE '' END,
           (%(reviewers)s::bigint[])[1 + c.id %% 4], c.finished_at + interval '10 minutes'
    FROM console_classification c WHERE c.review_status = 'decided'
    """,
]


def fill(write: Callable[[str], None]) -> None:
    from django.contrib.auth import get_user_model

    from accounts.roles import Role, set_roles
    from policies_app import services as policy_services
    from policies_app.demo import load_policy_text

    started = time.perf_counter()
    versions = []
    for n in range(3):
        draft = policy_services.create_policy(
            actor=None, name=f"Spam and scams {n + 1}", text=load_policy_text("spam-and-scams"),
            label_scheme="categories", labels=["SP0", "SP2", "SP3", "SP4"], output_format="json",
        )
        versions.append(policy_services.publish_version(actor=None, policy=draft.policy, version=draft).pk)
    reviewers = []
    for n in range(4):
        user = get_user_model().objects.create_user(username=f"bench-moderator-{n}")
        set_roles(actor=None, user=user, roles={Role.MODERATOR})
        reviewers.append(user.pk)
    params = {"items": ITEMS, "versions": versions, "reviewers": reviewers, "every": AWAITING_EVERY,
              "reasoning": REASONING}
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in FILL_SQL:
            step = time.perf_counter()
            cursor.execute(sql, params)
            write(f"  {cursor.rowcount:>9,} rows in {time.perf_counter() - step:5.1f} s")
    scratch.vacuum_analyze()
    write(f"filled in {time.perf_counter() - started:.0f} s")


# --- page timings ---------------------------------------------------------------------------------------


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": ordered[-1], "n": len(ordered)}


def _timed(client: Any, url: str, cpu: list[float]) -> float:
    """Wall milliseconds of one request; its CPU milliseconds in this process (Django, not PostgreSQL)
    go to `cpu`, which other work on the machine disturbs much less."""
    started, started_cpu = time.perf_counter(), time.process_time()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    cpu.append((time.process_time() - started_cpu) * 1000)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    return elapsed


def measure_pages(requests: int, write: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """Server time of the queue and item pages, in process with Django's test client (the whole
    request: middleware, session, queries, templates; no network)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from console import queues
    from console.models import Classification

    # The test client's host name. (Not setup_test_environment(): it instruments every template
    # render for test assertions, which would be measured as server time.)
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    # Pages render {% static %} without a collectstatic run in this process.
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-moderator-0"))
    awaiting = list(Classification.objects.awaiting_review().exclude(queue="escalated")
                    .values_list("item_id", "id", "created_at")[:: 97])
    middle = awaiting[len(awaiting) // 2]
    deep = queues.Cursor("oldest", (middle[2], middle[1])).encode()
    slug = Classification.objects.select_related("policy_version__policy").first().policy_version.policy.slug
    kinds: dict[str, Callable[[int], str]] = {
        "queue, first page": lambda n: "/items/",
        "queue, page deep in the queue": lambda n: f"/items/?after={deep}",
        "queue, by priority": lambda n: "/items/?order=priority",
        "queue, one policy": lambda n: f"/items/?policy={slug}",
        "queue, policy + source + confidence": lambda n: f"/items/?policy={slug}&source=chat&min_confidence=0.6",
        "queue, a filter nothing matches": lambda n: "/items/?source=nowhere",
        "queue, no-verdict tab": lambda n: "/items/?queue=no_verdict",
        "item page (opens and claims it)": lambda n: f"/items/{awaiting[n % len(awaiting)][0]}/",
    }
    results = {}
    for name, url in kinds.items():
        for n in range(20):  # warm up: connections, template caches, PostgreSQL's buffers
            _timed(client, url(n), [])
        cpu: list[float] = []
        samples = [_timed(client, url(n + random.randrange(len(awaiting))), cpu) for n in range(requests)]
        results[name] = {**_percentiles(samples), "cpu_p50": statistics.median(cpu)}
        r = results[name]
        write(f"  {name:<40} p50 {r['p50']:6.1f}  p95 {r['p95']:6.1f}  p99 {r['p99']:6.1f}  max {r['max']:6.1f} ms"
              f"  (Django CPU p50 {r['cpu_p50']:5.1f} ms)")
    return results


# --- verdict to browser ---------------------------------------------------------------------------------


# Records when each row lands in the page's "arrived" section (a MutationObserver runs right after the
# DOM changes, before the next paint), so waiting for it afterwards adds nothing to the figure.
WATCH_JS = """
() => {
    window.benchSeen = {};
    new MutationObserver(() => {
        for (const row of document.querySelectorAll("#queue-arrivals tr[id]")) {
            if (!(row.id in window.benchSeen)) window.benchSeen[row.id] = Date.now();
        }
    }).observe(document.body, {childList: true, subtree: true});
}
"""


def measure_push(rounds: int, write: Callable[[str], None]) -> dict[str, float]:
    """Milliseconds from the moment the reasoner starts storing a verdict (its batch write, commit and
    broadcast) to the moment its row is in the DOM of an open queue page in chromium."""
    from concurrent.futures import ThreadPoolExecutor

    from django.contrib.auth import get_user_model
    from django.test import Client
    from playwright.sync_api import sync_playwright

    from policies_app.models import PolicyVersion
    from reasoner.pipeline import Pipeline
    from safeguard.engines.scripted import ScriptedEngine
    from tests.browser import live
    from tests.factories import make_item

    version = PolicyVersion.objects.published().first()
    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-moderator-1"))
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    pool = ThreadPoolExecutor(max_workers=1)  # Django work off Playwright's event-loop thread

    def prepare(n: int) -> tuple[Any, Any, int]:
        """An item queued and run through the engine, its verdict not yet stored."""
        item = make_item(versions=[version], source="bench-push", external_id=f"push-{time.time_ns()}",
                         content=f"Buy now, {n} left #verdict=1")
        pipeline = Pipeline(ScriptedEngine(), f"bench-push-{n}")
        batch = pipeline.claim()
        completions, error = pipeline.generate(batch)
        return pipeline, (batch, completions, error), item.classifications.get().pk

    def store(pipeline: Any, work: tuple[Any, Any, str]) -> float:
        started = time.time() * 1000
        pipeline.finish(*work)
        connection.close()
        return started

    samples = []
    with tempfile.TemporaryDirectory() as workdir, live.console_processes(
        database=connection.settings_dict, workdir=Path(workdir), worker=False,
        extra_env={"CHANNELS_PREFIX": PREFIX},
    ) as url:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        with sync_playwright() as playwright:
            browser = live.launch_chromium(playwright)
            context = browser.new_context()
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": url}])
            page = context.new_page()
            page.goto(f"{url}/items/?source=bench-push")
            page.wait_for_selector('#live-state[data-state="open"]', timeout=30_000)
            page.evaluate(WATCH_JS)
            for n in range(rounds + 3):
                pipeline, work, classification_id = pool.submit(prepare, n).result()
                time.sleep(0.3)  # let the item's own arrival message settle first
                started = pool.submit(store, pipeline, work).result()
                row = f"row-{classification_id}"
                page.wait_for_function("id => window.benchSeen[id]", arg=row, timeout=10_000)
                shown = page.evaluate("id => window.benchSeen[id]", row)
                if n >= 3:  # the first rounds warm the server's connections and templates
                    samples.append(shown - started)
            browser.close()
    pool.shutdown()
    result = _percentiles(samples)
    write(f"  verdict stored -> row in the browser     p50 {result['p50']:6.1f}  p95 {result['p95']:6.1f}  "
          f"p99 {result['p99']:6.1f}  max {result['max']:6.1f} ms ({result['n']} verdicts)")
    return result


# --- the report -----------------------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}"


def drop_bench_database() -> None:
    scratch.drop_database(DATABASE)


def main(*, requests: int = 300, rounds: int = 40, refill: bool = False, push: bool = True, drop: bool = False,
         write: Callable[[str], None] = print) -> dict[str, Any]:
    isolate()
    if use_bench_database(refill):
        write(f"filling {DATABASE} with {ITEMS:,} items ({ITEMS // AWAITING_EVERY:,} awaiting review) ...")
        fill(write)
    from console.models import Classification, Item, Review

    write(f"machine: {machine()}; PostgreSQL and Redis on the same machine")
    write(f"data: {Item.objects.count():,} items, {Classification.objects.awaiting_review().count():,} awaiting "
          f"review, {Review.objects.count():,} reviews")
    write(f"page server time over {requests} requests each (Django test client, in process):")
    pages = measure_pages(requests, write)
    result: dict[str, Any] = {"pages": pages}
    if push:
        write(f"live push over {rounds} verdicts (daphne + chromium on this machine):")
        result["push"] = measure_push(rounds, write)
    if drop:
        drop_bench_database()
        write(f"dropped {DATABASE}")
    return result
