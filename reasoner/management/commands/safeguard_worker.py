"""The reasoner worker: one long-lived process that loads the model once and classifies in batches;
with SAFEGUARD_METRICS_PORT (or --metrics-port) it serves its engine metrics for Prometheus."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from reasoner import metrics
from reasoner.batch import EVALUATION, LIVE
from reasoner.engine import NO_ENGINE_MESSAGE, get_engine
from reasoner.worker import Worker
from safeguard import EngineError

log = logging.getLogger("console.reasoner")


class Command(BaseCommand):
    help = "Classify queued items with the configured model (SAFEGUARD_BACKEND), in batches, until stopped"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--burst", action="store_true", help="Exit once nothing is queued")
        parser.add_argument("--lanes", choices=["all", LIVE, EVALUATION], default="all",
                            help="Work live classifications, evaluation runs, or both (default): a worker kept "
                                 "for live traffic never has an evaluation batch in the way")
        parser.add_argument("--metrics-port", type=int, default=settings.SAFEGUARD_METRICS_PORT,
                            help="Serve the engine's Prometheus metrics on this port (SAFEGUARD_METRICS_PORT; "
                                 "0: off)")

    def handle(self, *args: Any, **options: Any) -> None:
        server = None
        if options["metrics_port"]:
            try:
                server, _ = metrics.serve(options["metrics_port"], settings.SAFEGUARD_METRICS_ADDR)
            except OSError as exc:
                raise CommandError(f"The metrics port {options['metrics_port']} could not be opened: {exc}") from exc
        try:
            self._work(options)
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()

    def _work(self, options: dict[str, Any]) -> None:
        stopped = threading.Event()
        worker: Worker | None = None

        def on_signal(signum: int, frame: Any) -> None:
            # Finish the batches already claimed, then exit 0.
            log.info("received %s: finishing the current batch", signal.Signals(signum).name)
            stopped.set()
            if worker is not None:
                worker.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            engine = get_engine()
        except (ImproperlyConfigured, EngineError, ValueError) as exc:
            raise CommandError(f"The model engine could not be loaded: {exc}") from exc
        if engine is None:
            self.stderr.write(NO_ENGINE_MESSAGE)
            if options["burst"]:
                return
            # `dev.py up` runs this command next to the web server: idle quietly instead of exiting
            # (which would stop `up`) or crash-looping; work stays queued until a model is configured.
            while not stopped.wait(3600):
                pass
            return
        worker = Worker(engine, lanes=(LIVE, EVALUATION) if options["lanes"] == "all" else (options["lanes"],))
        if stopped.is_set():
            return
        worker.serve(burst=options["burst"])
