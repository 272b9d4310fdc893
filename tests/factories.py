"""Objects for tests, made through the paths production takes: policies through the policy services,
items through the API's ingestion (first pass, routes, audit, the live broadcast), so a test never
proves something only a test helper does."""

from __future__ import annotations

import itertools
from typing import Any

from api import clients, ingest
from api.models import ApiClient
from console import intake
from console.models import Item
from evaluations import sets
from evaluations.models import LabeledSet
from policies_app import services as policy_services
from policies_app.models import PolicyVersion

_counter = itertools.count(1)

POLICY_TEXT = """# Test policy

## Instructions
Decide whether the content is spam. Answer with a bare 0 (not spam) or 1 (spam).

## Definitions
Spam: unsolicited bulk promotion.

## Violating content criteria
- SP2.a Unsolicited promotion with a link.

## Safe content criteria
- SP0.a Ordinary conversation.

## Output format
Answer 1 or 0, nothing else.
"""


def make_policy(*, actor: Any = None, name: str = "", publish: bool = True, **fields: Any) -> PolicyVersion:
    fields.setdefault("text", POLICY_TEXT)
    fields.setdefault("label_scheme", "binary")
    fields.setdefault("output_format", "binary")
    version = policy_services.create_policy(actor=actor, name=name or f"Policy {next(_counter)}", **fields)
    if publish:
        version = policy_services.publish_version(actor=actor, policy=version.policy, version=version)
    return version


def api_client_for(source: str) -> ApiClient:
    """The API client that submits as `source`, created (and audited) the first time."""
    client = ApiClient.objects.filter(source=source).first()
    if client is None:
        client, _ = clients.create_client(actor=None, name=f"Test client {source}", source=source)
    return client


def make_item(*, versions: list[PolicyVersion] | None = None, **fields: Any) -> Item:
    """An item ingested as the API ingests it, routed under `versions` (with no first-pass model yet,
    every version sends it to the reasoner, queued)."""
    fields.setdefault("kind", "message")
    fields.setdefault("source", "test")
    fields.setdefault("external_id", f"ext-{next(_counter)}")
    if fields["kind"] != "conversation":
        fields.setdefault("content", "hello there")
    data = intake.clean_item_input(**fields)
    [state] = ingest.ingest(client=api_client_for(data["source"]),
                            submissions=[ingest.Submission(data=data, versions=list(versions or []))])
    return Item.objects.get(pk=state["id"])


def make_labeled_set(policy: Any, rows: list[tuple[str, str]], *, name: str = "", actor: Any = None) -> LabeledSet:
    """A labelled set of `policy` with (text, label) rows, made through the sets service as an import does."""
    labeled_set = sets.create_set(actor=actor, policy=policy, name=name or f"Set {next(_counter)}")
    sets.add_examples(actor=actor, labeled_set=labeled_set,
                      examples=[sets.NewExample(label=label, content=text, row=n) for n, (text, label) in
                                enumerate(rows, start=1)])
    return labeled_set
