"""manage.py apply_retention [--dry-run]: apply the retention rules now, as the schedule does."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from privacy import retention


class Command(BaseCommand):
    help = "Redact the content, reasoning and raw outputs the retention rules say are due (--dry-run: count them)"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what is due; change nothing")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        outcomes = retention.apply(dry_run=dry_run)
        verb = "due" if dry_run else "redacted"
        for o in outcomes:
            self.stdout.write(f"{o.scope}: {o.kind} of {o.items} items {verb} (kept {o.days} days)")
        if not outcomes:
            self.stdout.write("No retention rule limits anything: everything is kept.")
            return
        # One item counts once per kind of text (content, reasoning, raw output) it loses.
        total = sum(o.items for o in outcomes)
        self.stdout.write(f"{'Would redact' if dry_run else 'Redacted'}: {total} (item, kind) pairs in all.")
