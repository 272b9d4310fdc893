"""Reading API requests: every refusal names the field at fault (items[3].content, policies[0])."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest

from api.errors import ApiError, invalid
from api.models import ApiClient
from console.intake import SubmitError, clean_item_input
from policies_app.models import Policy, PolicyVersion

ITEM_FIELDS = {"kind", "source", "external_id", "content", "turns", "metadata", "policies"}
_TYPES: dict[str, tuple[type, str]] = {
    "kind": (str, "a string"),
    "source": (str, "a string"),
    "external_id": (str, "a string"),
    "content": (str, "a string"),
    "turns": (list, "an array of {role, content} objects"),
    "metadata": (dict, "an object"),
    "policies": (list, "an array of policy slugs or names"),
}


def field(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def require_object(value: Any, param: str | None, what: str = "a JSON object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"must be {what}", param, "wrong_type") if param else ApiError(
            400, f"The body must be {what}", code="wrong_type")
    return value


def reject_unknown(obj: dict[str, Any], allowed: set[str], prefix: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise invalid(f"unknown field; allowed fields are {', '.join(sorted(allowed))}",
                      field(prefix, unknown[0]), "unknown_field")


class PolicyResolver:
    """Policy slugs or names to published versions, cached for one request, limited to the client's
    allowed policies: naming any other policy is a 403 naming it (an empty allowed set allows none)."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self._by_name: dict[str, PolicyVersion] = {}
        self._allowed: set[int] | None = None
        self._defaults: list[PolicyVersion] | None = None
        self._lists: dict[tuple[str, ...], list[PolicyVersion]] = {}

    def allowed(self) -> set[int]:
        if self._allowed is None:
            self._allowed = set(self.client.allowed_policies.values_list("pk", flat=True))
        return self._allowed

    def refuse(self, policy: Policy, param: str | None) -> ApiError:
        """The 403 for a policy outside the client's allowed set."""
        where = f"{param}: " if param else ""
        return ApiError(403, f"{where}this client may not classify under policy {policy.slug!r}; an admin can "
                             "allow it on the client's page", param=param, code="policy_not_allowed")

    def defaults(self, param: str) -> list[PolicyVersion]:
        if self._defaults is None:
            policies = list(self.client.default_policies.all())
            for policy in policies:
                # api.clients keeps the defaults inside the allowed set; this holds even if a row did not.
                if policy.pk not in self.allowed():
                    raise self.refuse(policy, param)
            versions = {v.policy_id: v for v in PolicyVersion.objects.published().select_related("policy")
                        .filter(policy__in=policies)}
            for policy in policies:
                if policy.pk not in versions:
                    raise ApiError(409, f"The client's default policy {policy.slug!r} has no published version",
                                   param=param, code="policy_not_published")
            self._defaults = [versions[p.pk] for p in policies]
        if not self._defaults:
            raise invalid("no policies given, and this client has no default policies", param, "no_policies")
        return self._defaults

    def find(self, name: str) -> Policy | None:
        """The policy `name` names (its slug, else its name, case-insensitively), allowed or not."""
        key = name.strip().lower()
        return Policy.objects.filter(slug=key).first() or Policy.objects.filter(name__iexact=name.strip()).first()

    def version(self, name: str, param: str) -> PolicyVersion:
        key = name.strip().lower()
        if key not in self._by_name:
            match = Q(policy__slug=key) | Q(policy__name__iexact=name.strip())
            version = PolicyVersion.objects.published().select_related("policy").filter(match).first()
            # Not allowed comes before unpublished: a client is not told the state of a policy it may not use.
            policy = version.policy if version is not None else self.find(name)
            if policy is None:
                raise ApiError(404, f"{param}: no policy is called {name!r}", param=param, code="unknown_policy")
            if policy.pk not in self.allowed():
                raise self.refuse(policy, param)
            if version is None:
                raise ApiError(409, f"{param}: policy {name!r} has no published version", param=param,
                               code="policy_not_published")
            self._by_name[key] = version
        return self._by_name[key]

    def versions(self, names: Any, param: str) -> list[PolicyVersion]:
        """The versions `names` (None: the client's defaults) route under, without repeats."""
        if names is None:
            return self.defaults(param)
        if not isinstance(names, list):
            raise invalid("must be an array of policy slugs or names", param, "wrong_type")
        key = (param, *map(str, names))
        if key in self._lists:  # a batch names the same list for each of its items
            return self._lists[key]
        if not names:
            raise invalid("give at least one policy, or leave the field out for the client's defaults", param)
        out: dict[int, PolicyVersion] = {}
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name.strip():
                raise invalid("must be a policy slug or name", f"{param}[{i}]", "wrong_type")
            version = self.version(name, f"{param}[{i}]")
            out.setdefault(version.id, version)
        self._lists[key] = list(out.values())
        return self._lists[key]


def parse_item(obj: Any, prefix: str, client: ApiClient, resolver: PolicyResolver,
               batch_policies: Any = None, batch_param: str = "policies") -> tuple[dict[str, Any], list[PolicyVersion]]:
    """One item of a request: (clean_item_input output, versions to route under)."""
    obj = require_object(obj, prefix or None, "an object" if prefix else "a JSON object")
    reject_unknown(obj, ITEM_FIELDS, prefix)
    for name, (kind, what) in _TYPES.items():
        if name in obj and obj[name] is not None and not isinstance(obj[name], kind):
            raise invalid(f"must be {what}", field(prefix, name), "wrong_type")
    if obj.get("source") not in (None, client.source):
        raise invalid(f"this token submits items as source {client.source!r}; leave the field out",
                      field(prefix, "source"), "wrong_source")
    content = obj.get("content") or ""
    turns = obj.get("turns") or []
    length = len(content) + sum(len(str(t.get("content", ""))) for t in turns if isinstance(t, dict))
    if length > settings.API_MAX_CONTENT_CHARS:
        raise invalid(f"the item's text is {length} characters; the limit is {settings.API_MAX_CONTENT_CHARS}",
                      field(prefix, "turns" if obj.get("turns") else "content"), "too_long")
    # NUL characters, lone surrogates, non-finite numbers and deep nesting were refused with the body
    # (api.json_input), wherever they were in it.
    try:
        data = clean_item_input(
            kind=obj.get("kind") or "message",
            source=client.source,
            external_id=obj.get("external_id") or "",
            content=content,
            turns=obj.get("turns"),
            metadata=obj.get("metadata"),
        )
    except SubmitError as exc:
        raise invalid(str(exc), field(prefix, exc.field) if exc.field else prefix or None) from None
    if "policies" in obj and obj["policies"] is not None:
        versions = resolver.versions(obj["policies"], field(prefix, "policies"))
    else:
        versions = resolver.versions(batch_policies, batch_param if batch_policies is not None else
                                     field(prefix, "policies"))
    return data, versions


def parse_wait(request: HttpRequest) -> float:
    """Seconds from ?wait= (0 without it), at most API_MAX_WAIT_S."""
    raw = request.GET.get("wait", "").strip()
    if not raw:
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise invalid("must be a number of seconds", "wait", "wrong_type") from None
    if not 0 <= wait <= settings.API_MAX_WAIT_S:
        raise invalid(f"must be between 0 and {settings.API_MAX_WAIT_S:g} seconds", "wait")
    return wait
