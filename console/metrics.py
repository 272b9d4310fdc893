"""Prometheus metrics of the web app, served at /metrics.

Two kinds, one exposition:

- metrics this process observes as it works, in prometheus_client's default registry: the request
  latency histogram (`RequestMetricsMiddleware`), and whatever the layers above define there (the
  API's webhook counters);
- metrics read when /metrics is scraped (`SCRAPE_TIME`): queue depths, classifications per status, RQ
  queue lengths, the newest audit chain check and, added by the API app, webhook deliveries per status.
  They come from the database and Redis, so they are right whichever process did the work; a part whose
  source is away is left out and counted in `console_scrape_errors`, so a scrape never fails because of it.

Access: with METRICS_TOKEN set, `Authorization: Bearer <token>`; without it, loopback clients only.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection, transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from rq import Queue

from audit.models import ChainCheck
from console.models import Classification, ClassificationStatus, ReviewQueue, Stage

log = logging.getLogger(__name__)

# --- request latency ------------------------------------------------------------------------------

# Up to 30 s: an API call with ?wait= may hold its answer that long (API_MAX_WAIT_S).
REQUEST_DURATION = Histogram(
    "console_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, resolved URL name and status class",
    ["method", "url_name", "status_class"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _url_name(request: HttpRequest) -> str:
    # The URL pattern's name, never the path: paths carry ids, so labels by path would grow without end.
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name
    return "static" if request.path.startswith(settings.STATIC_URL) else "unmatched"


class RequestMetricsMiddleware:
    """Times every request into `console_http_request_duration_seconds` (first in MIDDLEWARE, so the
    time includes the other middleware and static files)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in _METHODS else "other"
        REQUEST_DURATION.labels(method, _url_name(request), f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        return response


# --- read at scrape time --------------------------------------------------------------------------

SCRAPE_STATEMENT_TIMEOUT_MS = 3000  # one slow query must not hold the scrape past Prometheus's timeout
REDIS_TIMEOUT_S = 2.0


class ScrapeTimeCollector:
    """Metrics computed when scraped, in named parts; a part that raises is logged, left out and
    reported as 1 in `console_scrape_errors{part=...}` (0 for the parts that answered)."""

    def __init__(self) -> None:
        self._parts: dict[str, Callable[[], Iterable[Metric]]] = {}

    def add(self, part: str, collect: Callable[[], Iterable[Metric]]) -> None:
        """Add (or replace) a part: the layers above add theirs from their AppConfig.ready."""
        self._parts[part] = collect

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily("console_scrape_errors",
                                   "1 when this part of the scrape-time metrics could not be read", labels=["part"])
        for part, collect in list(self._parts.items()):
            try:
                metrics = list(collect())
            except Exception:  # the database or Redis is away, or a bug: the rest of /metrics still answers
                log.warning("metrics: the %s part could not be read", part, exc_info=True)
                errors.add_metric([part], 1)
                continue
            errors.add_metric([part], 0)
            yield from metrics
        yield errors


def scrape_rows(query: Iterable[Any]) -> list[Any]:
    """The rows of a lazy queryset, read under a statement timeout (for scrape-time parts)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(SCRAPE_STATEMENT_TIMEOUT_MS)])
        return list(query)


def _classifications() -> Iterator[Metric]:
    # The lanes: only queued and running rows (each status has a partial index), per stage.
    lanes = GaugeMetricFamily("console_classification_lane_depth",
                              "Classifications queued or running, per stage", labels=["stage", "status"])
    active = [ClassificationStatus.QUEUED.value, ClassificationStatus.RUNNING.value]
    rows = scrape_rows(Classification.objects.filter(status__in=active).values_list("stage", "status")
                       .annotate(n=Count("id")).order_by())
    depth = {(stage, status): n for stage, status, n in rows}
    for stage in Stage.values:
        for status in active:
            lanes.add_metric([stage, status], depth.get((stage, status), 0))
    yield lanes

    by_status = GaugeMetricFamily("console_classifications", "Classifications stored, per status",
                                  labels=["status"])
    rows = scrape_rows(Classification.objects.values_list("status").annotate(n=Count("id")).order_by())
    counts = dict(rows)
    for status in ClassificationStatus.values:
        by_status.add_metric([status], counts.get(status, 0))
    yield by_status


def _review_queues() -> Iterator[Metric]:
    # Awaiting rows only: answered from the review queues' partial indexes, however many are decided.
    gauge = GaugeMetricFamily("console_review_queue_depth", "Results awaiting a person, per review queue",
                              labels=["queue"])
    rows = scrape_rows(Classification.objects.awaiting_review().values_list("queue").annotate(n=Count("id"))
                       .order_by())
    counts = dict(rows)
    for queue in ReviewQueue.values:
        gauge.add_metric([queue], counts.get(queue, 0))
    yield gauge


_redis_lock = threading.Lock()
_redis_clients: dict[str, redis.Redis] = {}


def _redis_for(url: str) -> redis.Redis:
    # One client per URL and process, with timeouts: a Redis that stopped answering must not hold the
    # scrape (redis-py waits forever by default).
    with _redis_lock:
        client = _redis_clients.get(url)
        if client is None:
            client = _redis_clients[url] = redis.Redis.from_url(
                url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S)
        return client


def _rq_queues() -> Iterator[Metric]:
    waiting = GaugeMetricFamily("console_rq_queue_length", "Jobs waiting in an RQ queue", labels=["queue"])
    scheduled = GaugeMetricFamily("console_rq_scheduled_jobs", "Jobs scheduled for later (retries with backoff)",
                                  labels=["queue"])
    failed = GaugeMetricFamily("console_rq_failed_jobs", "Jobs in an RQ queue's failed registry", labels=["queue"])
    for name, config in settings.RQ_QUEUES.items():
        client = _redis_for(config.get("URL") or settings.REDIS_URL)
        queue = Queue(name, connection=client)  # builds key names only; reads below, in one round trip
        pipe = client.pipeline(transaction=False)
        pipe.llen(queue.key)
        pipe.zcard(queue.scheduled_job_registry.key)
        pipe.zcard(queue.failed_job_registry.key)
        length, later, dead = pipe.execute()
        waiting.add_metric([name], length)
        scheduled.add_metric([name], later)
        failed.add_metric([name], dead)
    yield from (waiting, scheduled, failed)


def _audit_chain() -> Iterator[Metric]:
    # The newest stored check (the schedule's or verify_audit's), not a new one: verifying reads the whole
    # audit table, far too much for every scrape. Nothing is reported before the first check.
    newest = scrape_rows(ChainCheck.objects.order_by("-id").values_list("ok", "checked_at")[:1])
    if not newest:
        return
    ok, checked_at = newest[0]
    yield GaugeMetricFamily("console_audit_chain_intact",
                            "1 when the newest verification found the audit hash chain intact, 0 when broken",
                            value=int(ok))
    yield GaugeMetricFamily("console_audit_chain_checked_timestamp_seconds",
                            "When the audit hash chain was last verified (Unix time)", value=checked_at.timestamp())


SCRAPE_TIME = ScrapeTimeCollector()
SCRAPE_TIME.add("classifications", _classifications)
SCRAPE_TIME.add("review_queues", _review_queues)
SCRAPE_TIME.add("rq_queues", _rq_queues)
SCRAPE_TIME.add("audit_chain", _audit_chain)


class _Exposition:
    """What /metrics shows: this process's own metrics, then the scrape-time ones."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from SCRAPE_TIME.collect()


# --- the view -------------------------------------------------------------------------------------

_PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-Ip")


def _refusal(request: HttpRequest) -> str:
    """Why this request may not read the metrics ("" when it may)."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode()):
            return ""
        return "Send the metrics token as 'Authorization: Bearer <token>' (METRICS_TOKEN)"
    try:
        loopback = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        loopback = False
    # A reverse proxy on the same host makes every client look local; the headers it adds give it away.
    if loopback and not any(name in request.headers for name in _PROXY_HEADERS):
        return ""
    return "Metrics are served to loopback clients only; set METRICS_TOKEN to scrape them from elsewhere"


@login_not_required
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus exposition (text format, or OpenMetrics when the scraper asks for it)."""
    refusal = _refusal(request)
    if refusal:
        return JsonResponse({"error": {"message": refusal, "type": "permission_error", "code": "metrics_forbidden"}},
                            status=403)
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(_Exposition()), content_type=content_type)
