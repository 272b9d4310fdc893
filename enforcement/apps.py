from __future__ import annotations

from django.apps import AppConfig


class EnforcementConfig(AppConfig):
    name = "enforcement"
    verbose_name = "Enforcement"

    def ready(self) -> None:
        # Django's place for connecting receivers to the layers below.
        from console import signals  # noqa: PLC0415
        from enforcement import actions  # noqa: PLC0415

        signals.item_decided.connect(actions.on_item_decided, dispatch_uid="enforcement.actions.on_item_decided")
