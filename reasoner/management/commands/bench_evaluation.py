"""Measure evaluation runs through the reasoner, and their effect on live items (see bench/README.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from bench.evaluation_throughput import main


class Command(BaseCommand):
    help = "Benchmark an evaluation run and the delay it adds to live items, in a scratch <database>_bench"
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--examples", type=int, default=10000, help="examples in the run (default 10000)")
        parser.add_argument("--rate", type=float, default=20.0, help="live items per second (default 20)")
        parser.add_argument("--seconds", type=float, default=5.0, help="length of the baseline phase (default 5)")
        parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")

    def handle(self, *args: Any, **options: Any) -> None:
        main(examples=options["examples"], rate=options["rate"], seconds=options["seconds"], keep=options["keep"],
             write=self.stdout.write)
