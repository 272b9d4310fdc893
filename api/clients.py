"""API clients: creating one (its token is shown once and stored hashed), changing its defaults,
webhook URL and rate limit, and revoking it. Each write is atomic and audited."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from api import item_states, webhooks
from api.auth import PREFIX_LENGTH, hash_token, new_token
from api.errors import ClientError
from api.models import ApiClient
from audit.writer import record
from policies_app.models import Policy


def _client_snapshot(client: ApiClient) -> dict[str, Any]:
    return {
        "name": client.name,
        "source": client.source,
        "token_prefix": client.token_prefix,
        "default_policies": sorted(p.slug for p in client.default_policies.all()) if client.pk else [],
        "webhook_url": client.webhook_url,
        "rate_limit_per_minute": client.rate_limit_per_minute,
        "revoked_at": item_states.iso(client.revoked_at),
    }


def _check_client_fields(*, webhook_url: str, rate_limit_per_minute: int | None) -> None:
    if webhook_url and not webhook_url.startswith(("https://", "http://")):
        raise ClientError("The webhook URL must start with https:// or http://", "webhook_url")
    refusal = webhooks.destination_refusal(webhook_url) if webhook_url else ""
    if refusal:
        raise ClientError(f"The webhook URL is refused: {refusal}", "webhook_url")
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise ClientError("The rate limit must be at least 1 request per minute", "rate_limit_per_minute")


@transaction.atomic
def create_client(
    *,
    actor: Any,
    name: str,
    source: str = "",
    default_policies: list[Policy] | None = None,
    webhook_url: str = "",
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiClient, str]:
    """A new client and its token. The token is returned once and stored only as a hash."""
    name = (name or "").strip()
    if not name:
        raise ClientError("Give the client a name", "name")
    if ApiClient.objects.filter(name__iexact=name).exists():
        raise ClientError(f"A client named {name!r} already exists", "name")
    source = slugify(source or name)[:100]
    if not source:
        raise ClientError("The source must hold letters or digits", "source")
    if ApiClient.objects.filter(source=source).exists():
        raise ClientError(f"Another client already submits as source {source!r}", "source")
    _check_client_fields(webhook_url=webhook_url, rate_limit_per_minute=rate_limit_per_minute)
    token = new_token()
    client = ApiClient.objects.create(
        name=name,
        source=source,
        token_prefix=token[:PREFIX_LENGTH],
        token_hash=hash_token(token),
        webhook_url=webhook_url,
        webhook_secret="whsec_" + secrets.token_urlsafe(32),
        rate_limit_per_minute=rate_limit_per_minute,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    client.default_policies.set(default_policies or [])
    record(actor=actor, action="api_client.created", obj=client, after=_client_snapshot(client))
    return client, token


@transaction.atomic
def update_client(
    *,
    actor: Any,
    client: ApiClient,
    default_policies: list[Policy],
    webhook_url: str,
    rate_limit_per_minute: int | None,
) -> ApiClient:
    """Change what a client may default to, where its webhooks go, and its rate limit."""
    _check_client_fields(webhook_url=webhook_url, rate_limit_per_minute=rate_limit_per_minute)
    client = ApiClient.objects.select_for_update().get(pk=client.pk)
    before = _client_snapshot(client)
    client.webhook_url = webhook_url
    client.rate_limit_per_minute = rate_limit_per_minute
    client.save(update_fields=["webhook_url", "rate_limit_per_minute"])
    client.default_policies.set(default_policies)
    after = _client_snapshot(client)
    if before != after:
        record(actor=actor, action="api_client.changed", obj=client, before=before, after=after)
    return client


@transaction.atomic
def revoke_client(*, actor: Any, client: ApiClient) -> ApiClient:
    """Stop a client's token working, for good (issue a new client to restore access)."""
    client = ApiClient.objects.select_for_update().get(pk=client.pk)
    if client.revoked_at is not None:
        return client
    before = _client_snapshot(client)
    client.revoked_at = timezone.now()
    client.save(update_fields=["revoked_at"])
    record(actor=actor, action="api_client.revoked", obj=client, before=before, after=_client_snapshot(client))
    return client
