"""The review app; its `ready` connects the open pages' broadcast to the reasoner's stored verdicts."""

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Review console"

    def ready(self) -> None:
        # Imported here, once the app registry is ready (models load with these modules): Django's place
        # for connecting signals.
        from console import broadcast, signals  # noqa: PLC0415

        signals.verdicts_stored.connect(broadcast.on_verdicts_stored, dispatch_uid="console.broadcast.verdicts")
