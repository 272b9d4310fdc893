"""Benchmark bulk ingestion through the HTTP API (see bench/ingest_throughput.py and bench/README.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from bench import ingest_throughput


class Command(BaseCommand):
    help = "Items/s ingested through the API in batches of 1,000, with real PostgreSQL, Redis and daphne"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--items", type=int, default=50_000, help="Items per phase")
        parser.add_argument("--batch", type=int, default=1000)
        parser.add_argument("--servers", type=int, default=2, help="daphne processes")
        parser.add_argument("--clients", type=int, default=4, help="client threads")
        parser.add_argument("--keep", action="store_true", help="Keep the scratch database afterwards")

    def handle(self, *args: Any, **options: Any) -> None:
        ingest_throughput.main(items=options["items"], batch=options["batch"], servers=options["servers"],
                               clients=options["clients"], keep=options["keep"], write=self.stdout.write)
