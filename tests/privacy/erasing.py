"""An item with a copy of a secret everywhere the console keeps text about it, made through the
production paths (ingestion, the reasoner's store, a moderator's override and comment, the enforcement
receiver, the webhook queue, a shadow run), and a search of every table for that secret."""

from __future__ import annotations

from typing import Any

from django.db import connection

from api import clients
from api.models import ApiClient
from console import comments
from console.models import Classification
from evaluations import shadow
from policies_app import services as policy_services
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.console.reviewing import make_verdict
from tests.enforcement.helpers import override
from tests.factories import POLICY_TEXT, make_policy


def shop_client(version: Any, source: str = "shop") -> ApiClient:
    client, _ = clients.create_client(actor=None, name=f"Client {source}", source=source,
                                      default_policies=[version.policy], webhook_url="http://127.0.0.1:9/hook")
    return client


def item_with_copies(capture: Any, moderator: Any, secret: str, *, version: Any = None,
                     external_id: str = "") -> Classification:
    """A decided item (an override, so a statement and a webhook delivery) holding `secret` in its
    content, metadata, the model's rationale, reasoning and raw output, the moderator's reason (so the
    statement's facts) and a comment; a shadow run's result for it too."""
    version = version or make_policy()
    if not ApiClient.objects.filter(source="shop").exists():
        shop_client(version)
    run = shadow.active_shadow(version.policy)
    if run is None:
        draft = policy_services.save_version(actor=None, policy=version.policy, base_number=version.number,
                                             text=POLICY_TEXT + "\nMention giveaways.", label_scheme="binary",
                                             output_format="binary", reasoning_effort="medium", labels=[],
                                             change_note="shadow")
        run = shadow.start_shadow(actor=None, version=draft, share=1.0)
    fields: dict[str, Any] = {"external_id": external_id} if external_id else {}
    verdict = make_verdict(version, violation=False, source="shop", content=f"buy pills from {secret} now",
                           metadata={"author": f"{secret}@example.com", "lang": "en"},
                           rationale=f"Nothing wrong with {secret}'s message.",
                           reasoning=f"The user {secret} writes about pills.",
                           raw_output=f"<|channel|>analysis<|message|>{secret} thinks<|end|>", **fields)
    while run_once(ScriptedEngine(), "w1"):  # the shadow run's result for the item
        pass
    assert run.results.filter(item=verdict.item, status="done").exists()
    comments.add_comment(user=moderator, item_id=verdict.item_id, text=f"Seen {secret} before.")
    override(capture, moderator, verdict, label="1", reason=f"It is spam by {secret}.")
    return Classification.objects.get(pk=verdict.pk)


def tables_holding(text: str) -> set[str]:
    """Every table with a row whose text (all its columns) contains `text`."""
    found = set()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            name = connection.ops.quote_name(table)
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {name} AS t WHERE strpos(t::text, %s) > 0)", [text])
            if cursor.fetchone()[0]:
                found.add(table)
    return found
