"""Measure the reasoner pipeline in a scratch database (see bench/README.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from bench.reasoner_throughput import main


class Command(BaseCommand):
    help = "Benchmark the reasoner batch pipeline with a simulated engine, in a scratch <database>_bench"
    requires_system_checks: list[str] = []  # it measures the worker; the web side's checks are not its business

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--items", type=int, default=20000, help="items to queue (default 20000)")
        parser.add_argument("--latency", type=float, default=0.0, help="engine seconds per batch (default 0)")
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
        parser.add_argument("--policies", type=int, default=1, help="published policies per item (default 1)")
        parser.add_argument("--serial", action="store_true", help="no overlap of database and engine work")
        parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")

    def handle(self, *args: Any, **options: Any) -> None:
        main(items=options["items"], latency_s=options["latency"], batch_size=options["batch_size"],
             workers=options["workers"], policies=options["policies"], serial=options["serial"],
             keep=options["keep"], write=self.stdout.write)
