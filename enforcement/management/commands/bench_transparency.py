"""Measure the automated actions' recording and the transparency report in a scratch database (see
bench/transparency.py)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from bench.transparency import main


class Command(BaseCommand):
    help = ("Time the recording of automated enforcement actions and the transparency report over many "
            "decisions, in a scratch <database>_bench_transparency")
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--decisions", type=int, default=1_000_000, help="decisions in the history (1,000,000)")
        parser.add_argument("--record", type=int, default=20_000,
                            help="automated verdicts recorded in reasoner-sized batches and timed (20,000)")
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--runs", type=int, default=3, help="report runs per period (3)")
        parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")

    def handle(self, *args: Any, **options: Any) -> None:
        main(decisions=options["decisions"], record=options["record"], batch=options["batch_size"],
             runs=options["runs"], keep=options["keep"], write=self.stdout.write)
