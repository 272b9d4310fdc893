from __future__ import annotations

from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "evaluations"
    verbose_name = "Evaluations"

    def ready(self) -> None:
        # Django's place for connecting receivers and registering with the layers below.
        from evaluations import gate, runs, signals  # noqa: PLC0415
        from policies_app import gates  # noqa: PLC0415

        signals.results_stored.connect(runs.on_results_stored, dispatch_uid="evaluations.runs.on_results_stored")
        gates.register(gate.publish_evidence)
