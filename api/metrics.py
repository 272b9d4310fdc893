"""The API's Prometheus metrics: webhook delivery attempts, counted where they are made (the RQ webhook
worker, `api.deliveries.attempt_delivery` and `api.webhooks.post`), and the deliveries per status read
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
