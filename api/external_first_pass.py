"""External first passes: an admin points a policy's first pass at an OpenAI-moderation-compatible
endpoint (`safeguard.moderation_endpoint`), and intake scores that policy's items there instead of with
the built-in model, routed by the same thresholds (`api.routing.choose_route`).

Configuration (`set_external_first_pass`, `remove_external_first_pass`) is atomic and audited; the API
key is write-only: the audit trail says only whether one is set. The URL is refused, naming the field,
when it resolves to a loopback or private address not in FIRST_PASS_ALLOWED_HOSTS (the webhooks' rule),
checked when saved and again whenever a process first loads the configuration.

At intake, `route_external` sends each batch in requests of at most FIRST_PASS_EXTERNAL_BATCH texts.
Every failure sends that request's items to the reasoner, with the reason on their Route (`note`) and in
the metrics, never closed: an unscored item is not a safe one.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from api import webhooks
from api.errors import ClientError
from api.metrics import EXTERNAL_FIRST_PASS_FALLBACKS, EXTERNAL_FIRST_PASS_REQUESTS
from api.models import ExternalFirstPass, RouteChoice
from api.routing import Routed, Thresholds, choose_route
from audit.writer import record
from policies_app.models import LabelScheme, Policy
from safeguard.labels import is_safe_label
from safeguard.moderation_endpoint import EndpointConfig, ModerationEndpoint, ScoringFailed

log = logging.getLogger(__name__)

VIOLATION = "violation"  # the mapping target of binary and VALID/INVALID policies
MAX_TIMEOUT_S = 30.0


# --- configuration ---------------------------------------------------------------------------------


def parse_category_map(text: str) -> dict[str, str]:
    """`name = code` pairs, one a line or separated by commas, into {endpoint category: policy code}."""
    mapping: dict[str, str] = {}
    for part in text.replace(",", "\n").splitlines():
        if not part.strip():
            continue
        name, sep, code = part.partition("=")
        name, code = name.strip(), code.strip()
        if not sep or not name or not code:
            raise ClientError(f"{part.strip()!r} is not 'endpoint category = policy code'", "category_map")
        if name in mapping:
            raise ClientError(f"The endpoint category {name!r} is mapped twice", "category_map")
        mapping[name] = code
    if not mapping:
        raise ClientError("Map at least one endpoint category to the policy", "category_map")
    return mapping


def format_category_map(mapping: dict[str, str]) -> str:
    return "\n".join(f"{name} = {code}" for name, code in mapping.items())


def _check_targets(policy: Policy, mapping: dict[str, str]) -> dict[str, str]:
    """The map with each target in the policy's spelling; refused when a target is no violation code."""
    version = policy.published_version() or policy.latest_version()
    if version is None:
        raise ClientError(f"{policy.name} has no version to map categories to", "category_map")
    if version.label_scheme != LabelScheme.CATEGORIES:
        wrong = sorted({code for code in mapping.values() if code.lower() != VIOLATION})
        if wrong:
            raise ClientError(f"{policy.name} has no categories: map endpoint categories to {VIOLATION!r}, "
                              f"not {wrong[0]!r}", "category_map")
        return dict.fromkeys(mapping, VIOLATION)
    codes = {label.upper(): label for label in version.labels or [] if not is_safe_label(label)}
    out = {}
    for name, code in mapping.items():
        if code.upper() not in codes:
            raise ClientError(f"{code!r} is not a violation category of {version} (its categories: "
                              f"{', '.join(codes.values()) or 'none'})", "category_map")
        out[name] = codes[code.upper()]
    return out


def _snapshot(row: ExternalFirstPass) -> dict[str, Any]:
    return {"url": row.url, "model": row.model, "api_key_set": bool(row.api_key), "timeout_s": row.timeout_s,
            "category_map": row.category_map, "enabled": row.enabled}


@transaction.atomic
def set_external_first_pass(*, actor: Any, policy: Policy, url: str, category_map: str | dict[str, str],
                            model: str = "", api_key: str | None = None, timeout_s: float = 2.0,
                            enabled: bool = True) -> ExternalFirstPass:
    """Make (or change) `policy`'s external first pass. `api_key` None keeps the stored key; "" drops it."""
    url = (url or "").strip()
    if not url.startswith(("https://", "http://")) or not urlsplit(url).hostname:
        raise ClientError("The endpoint URL must start with https:// or http:// and name a host", "url")
    if len(url) > 500:
        raise ClientError("The endpoint URL is longer than 500 characters", "url")
    refusal = webhooks.destination_refusal(url, "FIRST_PASS_ALLOWED_HOSTS")
    if refusal:
        raise ClientError(f"The endpoint URL is refused: {refusal}", "url")
    if not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise ClientError(f"The timeout is more than 0 and at most {MAX_TIMEOUT_S:g} seconds (intake waits for it)",
                          "timeout_s")
    model = (model or "").strip()
    if len(model) > 200:
        raise ClientError("The model name is longer than 200 characters", "model")
    if api_key is not None and len(api_key.strip()) > 500:
        raise ClientError("The API key is longer than 500 characters", "api_key")
    mapping = parse_category_map(category_map) if isinstance(category_map, str) else dict(category_map)
    if not mapping:
        raise ClientError("Map at least one endpoint category to the policy", "category_map")
    mapping = _check_targets(policy, mapping)
    row = ExternalFirstPass.objects.select_for_update().filter(policy=policy).first()
    before = _snapshot(row) if row else None
    row = row or ExternalFirstPass(policy=policy)
    old_key = row.api_key
    row.url, row.model, row.timeout_s, row.category_map, row.enabled = url, model, timeout_s, mapping, enabled
    if api_key is not None:
        row.api_key = api_key.strip()
    row.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    row.save()
    after = _snapshot(row)
    # The key itself never reaches the trail; a replaced key is still a change worth an event.
    if before is not None and row.api_key != old_key and after["api_key_set"] and before["api_key_set"]:
        after["api_key_replaced"] = True
    if before != after:
        record(actor=actor, action="external_first_pass.changed", obj=row, before=before, after=after)
    return row


@transaction.atomic
def remove_external_first_pass(*, actor: Any, policy: Policy) -> bool:
    """Route `policy` with its built-in model again; False when it had no external first pass."""
    row = ExternalFirstPass.objects.select_for_update().filter(policy=policy).first()
    if row is None:
        return False
    record(actor=actor, action="external_first_pass.removed", obj=row, before=_snapshot(row), after=None)
    row.delete()
    return True


# --- scoring at intake -----------------------------------------------------------------------------

_cache_lock = threading.Lock()
# ExternalFirstPass id -> (its updated_at, the endpoint or why it cannot be used): one endpoint (and
# breaker) per configuration per process, replaced when an admin changes it.
_cache: dict[int, tuple[Any, ModerationEndpoint | str]] = {}


def active_endpoints(policy_ids: Iterable[int]) -> dict[int, ModerationEndpoint | str]:
    """{policy id: its endpoint} for the policies with an enabled external first pass; where it cannot
    be used (its URL is refused now), why: its items go to the reasoner."""
    rows = list(ExternalFirstPass.objects.filter(policy_id__in=set(policy_ids), enabled=True)
                .values_list("pk", "policy_id", "updated_at"))
    out: dict[int, ModerationEndpoint | str] = {}
    for pk, policy_id, updated_at in rows:
        cached = _cache.get(pk)
        if cached is None or cached[0] != updated_at:
            cached = (updated_at, _load(pk))
            with _cache_lock:
                _cache[pk] = cached
        out[policy_id] = cached[1]
    return out


def _load(pk: int) -> ModerationEndpoint | str:
    row = ExternalFirstPass.objects.get(pk=pk)
    refusal = webhooks.destination_refusal(row.url, "FIRST_PASS_ALLOWED_HOSTS")
    try:
        if refusal:
            raise ValueError(f"the URL is refused now: {refusal}")
        return ModerationEndpoint(EndpointConfig(url=row.url, category_map=row.category_map, model=row.model,
                                                 api_key=row.api_key, timeout_s=row.timeout_s))
    except ValueError as exc:
        log.error("external first pass of policy %s cannot be used: %s; its items go to the reasoner",
                  row.policy_id, exc)
        return str(exc)


def scorer_name(endpoint: ModerationEndpoint) -> str:
    return f"external:{endpoint.config.model or urlsplit(endpoint.config.url).hostname}"[:200]


def route_external(endpoint: ModerationEndpoint | str, texts: Sequence[str], thresholds: Thresholds,
                   rng: random.Random) -> list[Routed]:
    """Score `texts` on `endpoint` and route each; any failure sends its request's texts to the reasoner
    (as does an endpoint that cannot be used: then `endpoint` is why)."""
    if isinstance(endpoint, str):
        EXTERNAL_FIRST_PASS_FALLBACKS.labels("unusable").inc(len(texts))
        note = f"external first pass unusable: {endpoint}"[:300]
        return [Routed(RouteChoice.REASONER, None, None, note=note) for _ in texts]
    size = max(1, settings.FIRST_PASS_EXTERNAL_BATCH)
    name = scorer_name(endpoint)
    note = ""
    if thresholds.model_id is not None:
        # Retraining chose this close threshold for the built-in model's scores (before the endpoint was
        # configured): on another model's scale it says nothing, so nothing closes until an admin sets one.
        note = f"close threshold chosen for first-pass model #{thresholds.model_id}, not this endpoint: none closed"
        thresholds = dataclasses.replace(thresholds, safe_below=0.0)
    out: list[Routed] = []
    for start in range(0, len(texts), size):
        chunk = texts[start:start + size]
        try:
            scored = endpoint.score(chunk)
        except ScoringFailed as exc:
            EXTERNAL_FIRST_PASS_REQUESTS.labels(exc.kind).inc()
            EXTERNAL_FIRST_PASS_FALLBACKS.labels(exc.kind).inc(len(chunk))
            if exc.kind != "circuit_open":
                log.warning("external first pass %s failed (%s): %s%s; %d items go to the reasoner",
                            endpoint.config.url, exc.kind, exc, f" ({exc.detail})" if exc.detail else "", len(chunk))
            note = f"external first pass failed ({exc.kind}): {exc}"[:300]
            out += [Routed(RouteChoice.REASONER, None, None, scorer=name, note=note) for _ in chunk]
            continue
        EXTERNAL_FIRST_PASS_REQUESTS.labels("ok").inc()
        for s in scored:
            choice = choose_route(s.score, thresholds, rng)
            out.append(Routed(choice.route, s.score, None, scorer=name, qc_targeted=choice.qc_targeted,
                              category="" if s.category == VIOLATION else s.category, note=note))
    return out
