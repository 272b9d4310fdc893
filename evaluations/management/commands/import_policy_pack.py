"""Import a policy pack (a folder or a .zip laid out as the teen-safety pack): each policy as a draft, each
data file as the labelled set of its policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from evaluations.packs import import_pack
from evaluations.sets import SetError

ACTOR = "system:import_policy_pack"


class Command(BaseCommand):
    help = ("Import a policy pack: example_policies/<slug>/policy.md with datasets/<slug>.csv (the teen-safety "
            "pack's layout), or <slug>/policy.md with <slug>.csv, from a folder or a .zip. Each policy becomes a "
            "draft (a policy with the same name is reused when its latest text is the same, else it gets a new "
            "draft version); each data file becomes the labelled set of its policy named after the file. Running "
            "it again adds nothing. The whole pack is imported, or none of it.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", type=Path, help="The pack: a folder or a .zip file")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = import_pack(actor=None, path=options["path"], actor_name=ACTOR)
        except SetError as exc:
            raise CommandError(f"{exc}. Nothing was imported.") from exc
        for entry in report.policies:
            version = entry.version
            self.stdout.write(f"{entry.policy.name} ({entry.policy.slug}): v{version.number} {entry.outcome}, "
                              f"{version.get_label_scheme_display()} {', '.join(version.labels or [])}, "
                              f"answers {version.get_output_format_display().lower()}")
            for imported in entry.sets:
                rows = f" (rows {', '.join(map(str, imported.skipped_rows))})" if imported.skipped_rows else ""
                self.stdout.write(f"  {imported.labeled_set.name}: {imported.added} added, {imported.duplicates} "
                                  f"duplicates, {imported.skipped} skipped for an empty label{rows}")
                self.stdout.write(f"    read {imported.mapping.describe()}")
        for note in report.notes:
            self.stdout.write(f"Note: {note}")
