"""The API's Prometheus metrics: external first-pass requests and fallbacks (counted at intake), webhook
delivery attempts, counted where they are made (the RQ webhook worker, `api.deliveries.attempt_delivery`
and `api.webhooks.post`), and the deliveries per status read
from the database when the web app's /metrics is scraped (`deliveries_by_status`, a part of
`console.metrics.SCRAPE_TIME` added in ApiConfig.ready), so the web app shows them whichever process
delivered.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from api.models import DeliveryStatus, WebhookDelivery
from console.metrics import scrape_rows
from safeguard.moderation_endpoint import FAILURE_KINDS

# What each attempt left the delivery as: delivered, retrying (after a failure) or failed (gave up).
DELIVERY_ATTEMPTS = Counter(
    "console_webhook_delivery_attempts_total",
    "Webhook delivery attempts, by what they left the delivery as (delivered, retrying, failed)",
    ["outcome"],
)
# Why an attempt failed: the receiver answered non-2xx (http_status), no answer (network), the URL was
# refused before sending (refused: loopback or private address), or the client was revoked or lost its
# URL (client_gone: the delivery fails without a request).
DELIVERY_FAILURES = Counter(
    "console_webhook_delivery_failures_total",
    "Failed webhook delivery attempts, by reason (http_status, network, refused, client_gone)",
    ["reason"],
)
# External first passes (api.external_first_pass): each request's outcome (ok, or a failure kind of
# safeguard.moderation_endpoint.FAILURE_KINDS; "circuit_open" was not sent), and the items each failure
# sent to the reasoner.
EXTERNAL_FIRST_PASS_REQUESTS = Counter(
    "console_external_first_pass_requests_total",
    "Requests to external first-pass endpoints, by outcome (ok, or why they gave no scores)",
    ["outcome"],
)
EXTERNAL_FIRST_PASS_FALLBACKS = Counter(
    "console_external_first_pass_fallback_items_total",
    "Items an external first pass did not score, sent to the reasoner, by reason",
    ["reason"],
)
for _kind in ("ok", *FAILURE_KINDS):
    EXTERNAL_FIRST_PASS_REQUESTS.labels(_kind)
for _kind in (*FAILURE_KINDS, "unusable"):  # unusable: the stored URL is refused now (a private address)
    EXTERNAL_FIRST_PASS_FALLBACKS.labels(_kind)
for _outcome in (DeliveryStatus.DELIVERED, DeliveryStatus.RETRYING, DeliveryStatus.FAILED):
    DELIVERY_ATTEMPTS.labels(_outcome.value)  # every series exists from the start, at 0
for _reason in ("http_status", "network", "refused", "client_gone"):
    DELIVERY_FAILURES.labels(_reason)


def deliveries_by_status() -> Iterator[Metric]:
    gauge = GaugeMetricFamily("console_webhook_deliveries", "Webhook deliveries stored, per status",
                              labels=["status"])
    counts = dict(scrape_rows(WebhookDelivery.objects.values_list("status").annotate(n=Count("id")).order_by()))
    for status in DeliveryStatus.values:
        gauge.add_metric([status], counts.get(status, 0))
    yield gauge
