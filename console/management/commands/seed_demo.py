"""Demo users, policies and items, idempotently: safe to run on every start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from console import services
from console.roles import Role
from policies_app import services as policy_services
from policies_app.demo import DEMO_POLICIES
from policies_app.models import Policy, VersionStatus

ITEMS = Path(__file__).resolve().parents[2] / "demo" / "items.json"

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
        self.stdout.write("  Demo logins (demo data only):")
        for username, password, roles in DEMO_USERS:
            role_names = ", ".join(sorted(r.value for r in roles))
            self.stdout.write(f"    {role_names:<14} {username} / {password}")

    def seed_users(self) -> dict[str, Any]:
        User = get_user_model()
        users = {}
        for username, password, roles in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.save()
                services.set_roles(actor=None, user=user, roles=roles)
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
            services.submit_item(
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
