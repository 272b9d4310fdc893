"""Measure the review pages with a million items (see bench/README.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from bench.review_pages import main


class Command(BaseCommand):
    help = ("Queue and item page server time with 1,000,000 items (100,000 awaiting review), and verdict-to-browser "
            "latency, in the database console_bench_review")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--requests", type=int, default=300, help="requests per page kind (default 300)")
        parser.add_argument("--rounds", type=int, default=40, help="verdicts pushed to the browser (default 40)")
        parser.add_argument("--refill", action="store_true", help="drop and fill the bench database again")
        parser.add_argument("--no-browser", action="store_true", help="page timings only (no chromium)")
        parser.add_argument("--drop", action="store_true", help="drop the bench database at the end (1.2 GB)")

    def handle(self, *args: Any, **options: Any) -> None:
        main(requests=options["requests"], rounds=options["rounds"], refill=options["refill"],
             push=not options["no_browser"], drop=options["drop"], write=self.stdout.write)
