"""The API app; its `ready` connects the webhook receivers to the console's and enforcement's signals,
adds the webhook deliveries to the web app's scrape-time metrics and to what an erasure redacts."""

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Ingestion API, routing and webhooks"

    def ready(self) -> None:
        # Imported here, once the app registry is ready (models load with these modules): Django's place
        # for connecting signals. Connected in every process, the reasoner worker's included.
        from api import deliveries, erasures, metrics  # noqa: PLC0415
        from console import signals  # noqa: PLC0415
        from console.metrics import SCRAPE_TIME  # noqa: PLC0415
        from enforcement import signals as enforcement_signals  # noqa: PLC0415
        from privacy import erasure  # noqa: PLC0415

        signals.verdicts_stored.connect(deliveries.on_verdicts_stored, dispatch_uid="api.deliveries.verdicts")
        signals.item_decided.connect(deliveries.on_item_decided, dispatch_uid="api.deliveries.decided")
        enforcement_signals.appeal_decided.connect(deliveries.on_appeal_decided,
                                                   dispatch_uid="api.deliveries.appeal_decided")
        # An erasure redacts the webhook payloads too, in its own transaction.
        erasure.register(erasures.redact_deliveries)
        # The web app's /metrics reads the deliveries per status from the database when scraped.
        SCRAPE_TIME.add("webhook_deliveries", metrics.deliveries_by_status)
