"""Export policies and their labelled sets as a policy pack that import_policy_pack reads back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from evaluations.packs import export_pack
from policies_app.models import Policy, PolicyVersion


class Command(BaseCommand):
    help = ("Write policies as a policy pack: example_policies/<slug>/policy.md (the latest version's text, or "
            "the version named as slug:N) with policy.json (name, labels, output format), and every labelled set "
            "of the policy as datasets/<slug>.csv (the set named after the policy) or datasets/<slug>/<set>.csv, "
            "with the columns text, prompt, response (turns for conversations) and label.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("policies", nargs="+", help="Policy slugs, each optionally with a version: spam:3")
        parser.add_argument("--out", type=Path, required=True, help="A folder, or a file ending in .zip")

    def handle(self, *args: Any, **options: Any) -> None:
        versions: list[PolicyVersion] = []
        for name in options["policies"]:
            slug, _, number = name.partition(":")
            policy = Policy.objects.filter(slug=slug).first()
            if policy is None:
                raise CommandError(f"No policy with slug {slug!r}")
            if number and not number.isdigit():
                raise CommandError(f"{name!r}: the version after ':' is a number, e.g. {slug}:2")
            version = policy.versions.filter(number=int(number)).first() if number else policy.latest_version()
            if version is None:
                raise CommandError(f"{policy.slug} has no version {number}".strip())
            versions.append(version)
        written = export_pack(versions=versions, out=options["out"])
        for path in written:
            self.stdout.write(f"{options['out']}/{path}" if options["out"].suffix.lower() != ".zip" else path)
        self.stdout.write(f"Wrote {len(versions)} polic{'y' if len(versions) == 1 else 'ies'} to {options['out']}")
