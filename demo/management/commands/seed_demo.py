"""Demo users, policies and items, idempotently: safe to run on every start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.roles import Role, set_roles
from console import intake
from console.models import Classification, ClassificationStatus, Stage
from demo.accountability import seed_accountability
from demo.workbench import seed_workbench
from policies_app import services as policy_services
from policies_app.demo import DEMO_POLICIES
from policies_app.models import Policy, VersionStatus
from reasoner.pipeline import Pipeline
from safeguard.engines.scripted import ScriptedEngine, ScriptedReply

ITEMS = Path(__file__).resolve().parents[2] / "items.json"
ANSWERS = Path(__file__).resolve().parents[2] / "answers.json"
# The model name shown beside the demo's verdicts, so nobody mistakes them for a model's output.
DEMO_MODEL = "demo answers, hand-written (no model ran)"

# Demo logins only: the `up` command serves on 127.0.0.1. Remove these users before real use.
DEMO_USERS = [
    ("moderator", "moderator-demo", {Role.MODERATOR}),
    ("moderator2", "moderator2-demo", {Role.MODERATOR}),
    ("writer", "writer-demo", {Role.POLICY_WRITER}),
    ("admin", "admin-demo", {Role.ADMIN}),
]


class Command(BaseCommand):
    help = "Create demo users, policies and items (idempotent) and print the demo logins"

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            users = self.seed_users()
            self.seed_policies(users["writer"])
            self.seed_items()
        answered = self.seed_answers()
        if answered:
            self.stdout.write(f"  {answered} demo verdicts stored (hand-written answers: no model is configured)")
        appealed = seed_accountability(users["moderator"], users["moderator2"])
        if appealed:
            self.stdout.write(f"  {appealed} demo appeals filed: one waits for moderator2 in the appeals queue")
        evaluated = seed_workbench(users["writer"], DEMO_MODEL)
        if evaluated:
            self.stdout.write(f"  {evaluated} demo evaluation answers stored: two runs of a labelled set to compare")
        self.stdout.write("  Demo logins (demo data only):")
        for username, password, roles in DEMO_USERS:
            role_names = ", ".join(sorted(r.value for r in roles))
            self.stdout.write(f"    {role_names:<14} {username} / {password}")

    def seed_users(self) -> dict[str, Any]:
        User = get_user_model()
        users = {}
        for role in Role:  # made by a data migration; a flushed database (the tests') has none
            Group.objects.get_or_create(name=role.value)
        for username, password, roles in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.save()
                set_roles(actor=None, user=user, roles=roles)
            users[username] = user
        return users

    def seed_policies(self, writer: Any) -> None:
        for spec in DEMO_POLICIES:
            if Policy.objects.filter(slug=spec["slug"]).exists():
                continue
            version = policy_services.create_policy(
                actor=writer,
                name=spec["name"],
                slug=spec["slug"],
                description=spec["description"],
                text=spec["text"],
                label_scheme=spec["label_scheme"],
                labels=spec["labels"],
                output_format=spec["output_format"],
                reasoning_effort=spec["reasoning_effort"],
                change_note=spec["change_note"],
            )
            policy_services.publish_version(actor=writer, policy=version.policy, version=version)
            for revision in spec.get("revisions", []):
                version = policy_services.save_version(
                    actor=writer,
                    policy=version.policy,
                    base_number=version.number,
                    text=revision["text"],
                    label_scheme=spec["label_scheme"],
                    labels=spec["labels"],
                    output_format=spec["output_format"],
                    reasoning_effort=spec["reasoning_effort"],
                    change_note=revision["change_note"],
                )
                if revision.get("publish", True):
                    policy_services.publish_version(actor=writer, policy=version.policy, version=version)

    def seed_items(self) -> None:
        if not ITEMS.exists():
            return
        published = {
            p.slug: p.published_version()
            for p in Policy.objects.filter(versions__status=VersionStatus.PUBLISHED).distinct()
        }
        for entry in json.loads(ITEMS.read_text()):
            versions = [published[slug] for slug in entry.get("policies", []) if slug in published]
            intake.submit_item(
                actor=None,
                actor_name="system:demo",
                versions=versions,
                kind=entry["kind"],
                source=entry["source"],
                external_id=entry["external_id"],
                content=entry.get("content", ""),
                turns=entry.get("turns"),
                metadata=entry.get("metadata", {}),
            )

    def seed_answers(self) -> int:
        """Give the demo items the hand-written answers in answers.json while no model is configured, so
        the queues have verdicts to review. They take the reasoner's own path (real harmony tokens,
        the real parser, the same audit events); only the words were written by us, and the verdicts
        say so. With a model configured, it classifies the demo items instead."""
        if settings.SAFEGUARD_BACKEND or not ANSWERS.exists():
            return 0
        answers: dict[str, dict[str, dict[str, Any]]] = json.loads(ANSWERS.read_text())
        sources = {entry["source"] for entry in json.loads(ITEMS.read_text())}
        waiting = Classification.objects.filter(
            stage=Stage.REASONER, status=ClassificationStatus.QUEUED, item__source__in=sources,
            item__external_id__in=list(answers),
        ).values_list("id", "item__external_id", "policy_version__policy__slug")
        replies = {
            str(pk): answers[external_id][slug]
            for pk, external_id, slug in waiting
            if slug in answers[external_id]
        }
        if not replies:
            return 0

        def answer(request: Any) -> ScriptedReply:
            reply = replies[request.key]
            final = reply["final"]
            return ScriptedReply(reply["analysis"], final, finish_reason="length" if final is None else "stop")

        pipeline = Pipeline(ScriptedEngine(answer, name=DEMO_MODEL), "demo-answers")
        batch = pipeline.claim(len(replies), ids=[int(pk) for pk in replies])
        completions, error = pipeline.generate(batch)
        pipeline.finish(batch, completions, error)
        return len(batch)
