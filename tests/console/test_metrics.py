"""/metrics: who may read it, the request histogram, and the scrape-time counts (which survive a database
or Redis that is away)."""

from __future__ import annotations

import copy
import socket
from collections import Counter

import pytest
import redis
from django.db import connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue

from console.models import Classification
from tests.console.reviewing import make_verdict
from tests.factories import make_item, make_policy

pytestmark = pytest.mark.django_db

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(client: Client | None = None, **headers: str) -> Samples:
    response = (client or Client()).get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _refused(response) -> str:
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "metrics_forbidden"
    return error["message"]


# --- access ---------------------------------------------------------------------------------------


def test_without_a_token_it_answers_loopback_clients_only():
    assert Client().get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200

    assert "loopback" in _refused(Client(REMOTE_ADDR="10.0.0.7").get("/metrics"))
    # A proxy on the same host makes everyone look local; its forwarding header gives it away.
    assert "loopback" in _refused(Client().get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}))


def test_with_a_token_it_wants_the_token_from_everyone(settings):
    settings.METRICS_TOKEN = "metrics-s3cret-token"

    assert "METRICS_TOKEN" in _refused(Client().get("/metrics"))
    assert _refused(Client().get("/metrics", headers={"Authorization": "Bearer not-the-token"}))
    assert _refused(Client().get("/metrics", headers={"Authorization": "Basic metrics-s3cret-token"}))

    remote = Client(REMOTE_ADDR="10.0.0.7")
    samples = _scrape(remote, Authorization="Bearer metrics-s3cret-token")
    assert _value(samples, "console_scrape_errors", part="classifications") == 0


def test_it_needs_no_login_and_answers_only_get():
    assert Client().post("/metrics").status_code == 405


# --- what it shows --------------------------------------------------------------------------------


def test_the_request_histogram_counts_by_method_url_name_and_status_class(moderator_client):
    before = _scrape()

    for _ in range(3):
        assert Client().get("/healthz").status_code == 200
    assert Client().post("/healthz").status_code == 405
    assert Client().get("/items/12345/").status_code == 302  # to the login page
    assert moderator_client.get("/items/12345/").status_code == 404
    assert Client().get("/no/such/page/").status_code == 404
    assert Client().get("/static/no-such-file.css").status_code == 404

    after = _scrape()

    def added(url_name: str, method: str, status_class: str) -> float:
        labels = {"method": method, "url_name": url_name, "status_class": status_class}
        name = "console_http_request_duration_seconds_count"
        return (_value(after, name, **labels) or 0) - (_value(before, name, **labels) or 0)

    assert added("console:healthz", "GET", "2xx") == 3
    assert added("console:healthz", "POST", "4xx") == 1
    assert added("console:item", "GET", "3xx") == 1
    assert added("console:item", "GET", "4xx") == 1
    assert added("unmatched", "GET", "4xx") == 1
    assert added("static", "GET", "4xx") == 1
    inf = {"method": "GET", "url_name": "console:healthz", "status_class": "2xx", "le": "+Inf"}
    assert _value(after, "console_http_request_duration_seconds_bucket", **inf) == _value(
        after, "console_http_request_duration_seconds_count", **{k: v for k, v in inf.items() if k != "le"})
    # Labels name URL patterns, never paths (which carry ids: unbounded).
    url_names = {dict(labels).get("url_name", "") for _, labels in after}
    assert not any("/" in name or "12345" in name for name in url_names)


def test_scrape_time_counts_are_per_status_lane_and_review_queue():
    version = make_policy()
    make_verdict(version, status="done", violation=True)  # a violation: to review
    make_verdict(version, status="unparsable")  # no usable verdict
    make_item(versions=[version], content="still waiting")  # queued for the reasoner

    samples = _scrape()

    stored = Counter(Classification.objects.values_list("status", flat=True))
    for status in ("queued", "running", "done", "unparsable", "failed", "truncated"):
        assert _value(samples, "console_classifications", status=status) == stored[status]
    assert stored["queued"] == 1 and stored["unparsable"] == 1
    assert _value(samples, "console_classification_lane_depth", stage="reasoner", status="queued") == 1
    assert _value(samples, "console_classification_lane_depth", stage="reasoner", status="running") == 0
    assert _value(samples, "console_classification_lane_depth", stage="fast", status="queued") == 0
    assert _value(samples, "console_review_queue_depth", queue="review") == 1
    assert _value(samples, "console_review_queue_depth", queue="no_verdict") == 1
    assert _value(samples, "console_review_queue_depth", queue="escalated") == 0
    assert _value(samples, "console_webhook_deliveries", status="delivered") == 0
    parts = ("classifications", "review_queues", "rq_queues", "webhook_deliveries")
    assert [_value(samples, "console_scrape_errors", part=part) for part in parts] == [0, 0, 0, 0]


def test_rq_queue_lengths_are_read_from_redis(settings):
    settings.RQ_QUEUES = {**settings.RQ_QUEUES, "metrics-test": {"URL": settings.REDIS_URL}}
    queue = Queue("metrics-test", connection=redis.Redis.from_url(settings.REDIS_URL))
    queue.empty()
    try:
        queue.enqueue("os.getcwd")
        queue.enqueue("os.getcwd")

        samples = _scrape()
    finally:
        queue.empty()

    assert _value(samples, "console_rq_queue_length", queue="metrics-test") == 2
    assert _value(samples, "console_rq_scheduled_jobs", queue="metrics-test") == 0
    assert _value(samples, "console_rq_failed_jobs", queue="metrics-test") == 0
    assert _value(samples, "console_rq_queue_length", queue="webhooks") is not None


def test_a_redis_outage_still_serves_metrics_and_says_so(settings):
    closed = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.RQ_QUEUES = {name: {**config, "URL": closed} for name, config in settings.RQ_QUEUES.items()}
    make_verdict(status="unparsable")

    samples = _scrape()

    assert _value(samples, "console_scrape_errors", part="rq_queues") == 1
    assert _value(samples, "console_scrape_errors", part="classifications") == 0
    assert not [key for key in samples if key[0] == "console_rq_queue_length"]
    assert _value(samples, "console_classifications", status="unparsable") == 1


@pytest.mark.django_db(transaction=True)  # this test's connection is pointed at no server for a while
def test_a_database_outage_still_serves_metrics_and_says_so():
    real = copy.deepcopy(connection.settings_dict)
    connection.close()
    # A real outage: the server this connection would reach refuses it (a closed port, no socket).
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()),
                                    OPTIONS={**real.get("OPTIONS", {}), "host": "127.0.0.1", "connect_timeout": 2})
    try:
        samples = _scrape()
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(real)

    for part in ("classifications", "review_queues", "webhook_deliveries"):
        assert _value(samples, "console_scrape_errors", part=part) == 1
    assert _value(samples, "console_scrape_errors", part="rq_queues") == 0
    assert not [key for key in samples if key[0] == "console_classifications"]
    assert _value(samples, "console_rq_queue_length", queue="default") is not None
