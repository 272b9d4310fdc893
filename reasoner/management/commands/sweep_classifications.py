"""Re-queue running classifications whose lease ran out, once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from reasoner.sweeper import sweep_stale


class Command(BaseCommand):
    help = "Re-queue reasoner work whose worker died (its lease expired); workers also do this all the time"

    def handle(self, *args: Any, **options: Any) -> None:
        swept = sweep_stale()
        self.stdout.write(f"Swept {swept} classification{'s' if swept != 1 else ''} with an expired lease")
