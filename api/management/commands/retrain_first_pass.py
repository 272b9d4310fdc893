"""Retrain first-pass models now (the rqworker also does it every FIRST_PASS_RETRAIN_INTERVAL_S)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api import training
from policies_app.models import Policy


class Command(BaseCommand):
    help = "Train each policy's first-pass classifier from its labelled data (or one policy's, by slug)"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slugs", nargs="*", help="Policies to retrain (default: all)")
        parser.add_argument("--force", action="store_true", help="Retrain even if the data did not change")

    def handle(self, *args: Any, **options: Any) -> None:
        policies = Policy.objects.filter(slug__in=options["slugs"]) if options["slugs"] else Policy.objects.all()
        missing = set(options["slugs"]) - set(policies.values_list("slug", flat=True))
        if missing:
            raise CommandError(f"No policy with slug {', '.join(sorted(missing))}")
        for policy in policies:
            model = training.retrain_first_pass(policy=policy, force=options["force"])
            if model is None:
                self.stdout.write(f"{policy.slug}: not retrained (too few labelled examples, or nothing new)")
            else:
                cv = model.metrics["cv"]
                proposal = cv["proposal"]
                self.stdout.write(
                    f"{policy.slug}: model #{model.pk} on {model.n_examples} examples ({model.n_positive} violations);"
                    f" cross-validated AUC {cv['auc']}, close below {proposal['threshold']}:"
                    f" {'applied' if proposal['apply'] else 'not applied'}. {proposal['reason']}"
                )
