"""Import labelled examples (a CSV, JSON Lines or JSON file, plain or gzipped) for a policy's first pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from api import errors, training
from policies_app.models import Policy
from safeguard import firstpass


class Command(BaseCommand):
    help = (
        "Add labelled examples for a policy's first pass from a CSV file (`text,label` columns: 1/0, "
        "true/false, VALID/INVALID or codes like SP2; or a golden-set sheet with section rows SP0, SP2 ...) "
        "or a JSON Lines / JSON file, plain or .gz (a text or prompt, and a label or 0/1 category flags)"
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("policy", help="Policy slug")
        parser.add_argument("csv", type=Path, metavar="file", help="CSV, JSON Lines or JSON, plain or gzipped")
        parser.add_argument("--retrain", action="store_true", help="Retrain the policy's first pass afterwards")

    def handle(self, *args: Any, **options: Any) -> None:
        policy = Policy.objects.filter(slug=options["policy"]).first()
        if policy is None:
            raise CommandError(f"No policy with slug {options['policy']!r}")
        try:
            skipped: list[int] = []
            examples = firstpass.read_labeled_file(options["csv"], on_skip=lambda line, why: skipped.append(line))
            count = training.import_labeled_examples(actor=None, actor_name="system:import_labeled_set",
                                                     policy=policy, examples=examples, dataset=options["csv"].name)
        except (OSError, firstpass.FirstPassError, errors.ClientError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Imported {count} examples ({sum(e.violation for e in examples)} violations) "
                          f"for {policy.slug}")
        if skipped:
            self.stdout.write(f"Skipped {len(skipped)} rows without a label (lines {', '.join(map(str, skipped[:10]))}"
                              f"{' ...' if len(skipped) > 10 else ''})")
        if options["retrain"]:
            model = training.retrain_first_pass(policy=policy, force=True)
            self.stdout.write(f"Trained model #{model.pk}" if model else "Too few examples to train a model yet")
