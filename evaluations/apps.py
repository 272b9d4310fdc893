from __future__ import annotations

from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "evaluations"
    verbose_name = "Evaluations"

    def ready(self) -> None:
        from evaluations import runs, signals  # noqa: PLC0415 - Django's place for connecting receivers

        signals.results_stored.connect(runs.on_results_stored, dispatch_uid="evaluations.runs.on_results_stored")
