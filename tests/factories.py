"""Objects for tests, made through the same services the console uses."""

from __future__ import annotations

import itertools
from typing import Any

from console import services
from console.models import Item
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


def make_item(*, versions: list[PolicyVersion] | None = None, **fields: Any) -> Item:
    fields.setdefault("kind", "message")
    fields.setdefault("source", "test")
    fields.setdefault("external_id", f"ext-{next(_counter)}")
    if fields["kind"] != "conversation":
        fields.setdefault("content", "hello there")
    item, _ = services.submit_item(actor=None, actor_name="system:test", versions=versions or [], **fields)
    return item
