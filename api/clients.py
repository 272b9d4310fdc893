"""API clients: creating one (its token is shown once and stored hashed), changing its scopes, expiry,
policies, webhook URL and rate limit, issuing it a new token, and revoking it. Each write is atomic and
audited.

A client's allowed policies are the only ones it may classify under; an empty set allows none (a
client made without naming them is allowed its default policies, which must always lie inside the
allowed set). A new token expires after API_TOKEN_DEFAULT_DAYS (0: never) unless the admin says
otherwise."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from api import item_states, webhooks
from api.auth import PREFIX_LENGTH, hash_token, new_token
from api.errors import ClientError
from api.models import ApiClient, Scope
from audit.writer import record
from policies_app.models import Policy


class _Unset:
    """The default of an argument the caller left out (None is a value: "never expires")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def default_expiry(now: datetime | None = None) -> datetime | None:
    """When a token issued now expires by default: API_TOKEN_DEFAULT_DAYS on, or never for 0."""
    days = settings.API_TOKEN_DEFAULT_DAYS
    if not days:
        return None
    return _to_minute((now or timezone.now()) + timedelta(days=days))


def _to_minute(value: datetime | None) -> datetime | None:
    # The pages edit expiries to the minute; stored the same way, an unchanged form changes nothing.
    return value.replace(second=0, microsecond=0) if value else None


def _client_snapshot(client: ApiClient) -> dict[str, Any]:
    return {
        "name": client.name,
        "source": client.source,
        "token_prefix": client.token_prefix,
        "scopes": list(client.scopes),  # in Scope order (api.clients keeps them so)
        "expires_at": item_states.iso(client.expires_at),
        "allowed_policies": sorted(p.slug for p in client.allowed_policies.all()) if client.pk else [],
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


def _check_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ClientError(f"Unknown scope {unknown[0]!r}; the scopes are {', '.join(Scope.values)}", "scopes")
    if not scopes:
        raise ClientError("Give the token at least one scope", "scopes")
    return [s for s in Scope.values if s in scopes]  # one order, no repeats


def _check_expiry(expires_at: datetime | None, *, unchanged_from: Any = UNSET) -> datetime | None:
    expires_at = _to_minute(expires_at)
    # A past expiry is refused when set, not when an admin saves another field of an expired client.
    if expires_at is not None and expires_at != unchanged_from and expires_at <= timezone.now():
        raise ClientError("The expiry must be in the future (revoke the token to stop it now)", "expires_at")
    return expires_at


def _check_policies(allowed: list[Policy], defaults: list[Policy]) -> None:
    outside = sorted(p.slug for p in set(defaults) - set(allowed))
    if outside:
        raise ClientError(f"Default policy {outside[0]!r} is not among the allowed policies; allow it or drop it",
                          "default_policies")


@transaction.atomic
def create_client(
    *,
    actor: Any,
    name: str,
    source: str = "",
    scopes: list[str] | None = None,
    expires_at: datetime | None = UNSET,
    allowed_policies: list[Policy] | None = None,
    default_policies: list[Policy] | None = None,
    webhook_url: str = "",
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiClient, str]:
    """A new client and its token. The token is returned once and stored only as a hash.

    Left out: `scopes` is every scope, `expires_at` is `default_expiry()` (None: never), and
    `allowed_policies` is the default policies (no policies named: the client may use none)."""
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
    scopes = _check_scopes(list(Scope.values) if scopes is None else list(scopes))
    expires_at = default_expiry() if expires_at is UNSET else _check_expiry(expires_at)
    default_policies = list(default_policies or [])
    allowed_policies = default_policies if allowed_policies is None else list(allowed_policies)
    _check_policies(allowed_policies, default_policies)
    token = new_token()
    client = ApiClient.objects.create(
        name=name,
        source=source,
        token_prefix=token[:PREFIX_LENGTH],
        token_hash=hash_token(token),
        scopes=scopes,
        expires_at=expires_at,
        webhook_url=webhook_url,
        webhook_secret="whsec_" + secrets.token_urlsafe(32),
        rate_limit_per_minute=rate_limit_per_minute,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    client.allowed_policies.set(allowed_policies)
    client.default_policies.set(default_policies)
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
    scopes: list[str] | None = None,
    expires_at: datetime | None = UNSET,
    allowed_policies: list[Policy] | None = None,
) -> ApiClient:
    """Change what a client may do and default to, when its token expires, where its webhooks go, and
    its rate limit. `scopes`, `expires_at` and `allowed_policies` left out stay as they are."""
    _check_client_fields(webhook_url=webhook_url, rate_limit_per_minute=rate_limit_per_minute)
    client = ApiClient.objects.select_for_update().get(pk=client.pk)
    if client.revoked_at is not None:
        raise ClientError("This client's token is revoked; create a new client instead")
    before = _client_snapshot(client)
    if scopes is not None:
        client.scopes = _check_scopes(list(scopes))
    if expires_at is not UNSET:
        client.expires_at = _check_expiry(expires_at, unchanged_from=client.expires_at)
    allowed = list(client.allowed_policies.all()) if allowed_policies is None else list(allowed_policies)
    _check_policies(allowed, list(default_policies))
    client.webhook_url = webhook_url
    client.rate_limit_per_minute = rate_limit_per_minute
    client.save(update_fields=["scopes", "expires_at", "webhook_url", "rate_limit_per_minute"])
    client.allowed_policies.set(allowed)
    client.default_policies.set(default_policies)
    after = _client_snapshot(client)
    if before != after:
        record(actor=actor, action="api_client.changed", obj=client, before=before, after=after)
    return client


@transaction.atomic
def rotate_token(*, actor: Any, client: ApiClient) -> tuple[ApiClient, str]:
    """Replace a client's token (the old one stops working at once) with one that expires after the
    default lifetime; the way back for an expired token, and the answer to a leaked one. The client
    keeps its source, scopes, policies and webhook secret. Returns the new token, once."""
    client = ApiClient.objects.select_for_update().get(pk=client.pk)
    if client.revoked_at is not None:
        raise ClientError("This client's token is revoked for good; create a new client instead")
    before = _client_snapshot(client)
    token = new_token()
    client.token_prefix = token[:PREFIX_LENGTH]
    client.token_hash = hash_token(token)
    client.expires_at = default_expiry()
    client.save(update_fields=["token_prefix", "token_hash", "expires_at"])
    record(actor=actor, action="api_client.token_rotated", obj=client, before=before, after=_client_snapshot(client))
    return client, token


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
