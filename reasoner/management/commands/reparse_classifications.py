"""Read stored model answers again with the current parser: report what changes, or apply it."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from console.models import Classification
from policies_app.models import Policy, PolicyVersion
from reasoner.rereading import reread


class Command(BaseCommand):
    help = (
        "Re-read stored reasoner answers with the current parser. A dry run by default: it reports how many "
        "verdicts would change and how. --apply stores the changes (audited) and sends results that now need "
        "a person to the review queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="store the changes (default: report only)")
        parser.add_argument("--policy", action="append", default=[], metavar="SLUG",
                            help="only this policy's answers (repeatable)")
        parser.add_argument("--policy-version", dest="policy_version", type=int, action="append", default=[],
                            metavar="ID", help="only this policy version's answers, by id (repeatable)")
        parser.add_argument("--since", metavar="YYYY-MM-DD", help="only answers finished on or after this day (UTC)")
        parser.add_argument("--examples", type=int, default=5, metavar="N",
                            help="classification ids shown per kind of change (default 5)")

    def handle(self, *args: Any, **options: Any) -> None:
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise CommandError("The database is not migrated yet: run `python3 dev.py manage migrate` "
                               "(or `python3 dev.py up` once), then run this again")
        classifications = Classification.objects.all()
        if options["policy"]:
            found = set(Policy.objects.filter(slug__in=options["policy"]).values_list("slug", flat=True))
            missing = sorted(set(options["policy"]) - found)
            if missing:
                raise CommandError(f"--policy: no policy with the slug {', '.join(missing)}")
            classifications = classifications.filter(policy_version__policy__slug__in=options["policy"])
        if options["policy_version"]:
            found_ids = set(PolicyVersion.objects.filter(pk__in=options["policy_version"]).values_list("pk", flat=True))
            missing_ids = sorted(set(options["policy_version"]) - found_ids)
            if missing_ids:
                listed = ", ".join(map(str, missing_ids))
                raise CommandError(f"--policy-version: no policy version with the id {listed}")
            classifications = classifications.filter(policy_version_id__in=options["policy_version"])
        if options["since"]:
            try:
                day = datetime.date.fromisoformat(options["since"])
            except ValueError as exc:
                raise CommandError(f"--since: {options['since']!r} is not a date (YYYY-MM-DD)") from exc
            start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
            classifications = classifications.filter(finished_at__gte=start)

        started = timezone.now()
        report = reread(classifications=classifications, apply=options["apply"])
        seconds = (timezone.now() - started).total_seconds()
        verb = "changed" if report.applied else "would change"
        self.stdout.write(f"Read {report.examined} stored answer{'s' if report.examined != 1 else ''} again "
                          f"in {seconds:.1f} s: {len(report.changes)} {verb}.")
        for transition, count in report.transitions.most_common():
            ids = [c.classification_id for c in report.changes if c.transition == transition][: options["examples"]]
            self.stdout.write(f"  {transition:<40} {count:>7}   e.g. {', '.join(map(str, ids))}")
        if report.changes:
            went = "went" if report.applied else "would go"
            self.stdout.write(f"{report.newly_for_people} {went} to a person and did not wait for one before; "
                              f"{report.kept_decided} already decided by moderators keep their decision.")
        if report.changes and not report.applied:
            self.stdout.write("Nothing was stored (a dry run): run again with --apply to store these changes.")
