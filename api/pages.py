"""The console's integration pages, for admins: API clients (tokens and their rotation, scopes, expiry,
allowed and default policies, webhooks), the webhook delivery log, and the first pass (models, routing
thresholds, retraining). Writes go through `api.clients`, `api.routing`, `api.deliveries` and `api.jobs`."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts.roles import Role, role_required
from api import (
    clients,
    deliveries,
    errors,
    external_first_pass,
    jobs,
    quality_checks,
    redis_client,
    routing,
    savings,
    schedule,
    training,
)
from api.forms import ClientCreateForm, ClientEditForm, ExternalFirstPassForm, RoutingRuleForm
from api.models import (
    ApiClient,
    DeliveryStatus,
    ExternalFirstPass,
    FirstPassModel,
    LabeledExample,
    RoutingRule,
    WebhookDelivery,
)
from policies_app.models import Policy, PolicyVersion


def _get_client_for_user(request: HttpRequest, client_id: int) -> ApiClient:
    # Admins manage every client; the role decorator has already checked the role.
    return get_object_or_404(ApiClient.objects.prefetch_related("default_policies", "allowed_policies"), pk=client_id)


def _get_delivery_for_user(request: HttpRequest, delivery_id: int) -> WebhookDelivery:
    return get_object_or_404(WebhookDelivery.objects.select_related("client", "item"), pk=delivery_id)


def _get_policy_for_user(request: HttpRequest, slug: str) -> Policy:
    return get_object_or_404(Policy, slug=slug)


# --- clients ---------------------------------------------------------------------------------------


@require_GET
@role_required(Role.ADMIN)
def client_list(request: HttpRequest) -> HttpResponse:
    clients = ApiClient.objects.prefetch_related("default_policies", "allowed_policies").annotate(
        failed=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.FAILED))
    )
    return render(request, "api/client_list.html", {"clients": clients})


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def client_create(request: HttpRequest) -> HttpResponse:
    form = ClientCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            client, token = clients.create_client(
                actor=request.user, name=data["name"], source=data["source"], scopes=data["scopes"],
                expires_at=data["expires_at"], allowed_policies=list(data["allowed_policies"]),
                default_policies=list(data["default_policies"]), webhook_url=data["webhook_url"],
                rate_limit_per_minute=data["rate_limit_per_minute"],
            )
        except errors.ClientError as exc:
            form.add_client_error(exc)
        else:
            # Rendered, not redirected: the token exists only in this response and is never stored.
            return render(request, "api/client_create.html", {"client": client, "token": token}, status=201)
    return render(request, "api/client_create.html", {"form": form})


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def client_detail(request: HttpRequest, client_id: int) -> HttpResponse:
    client = _get_client_for_user(request, client_id)
    initial = {"scopes": client.scopes, "expires_at": client.expires_at,
               "allowed_policies": list(client.allowed_policies.all()),
               "default_policies": list(client.default_policies.all()), "webhook_url": client.webhook_url,
               "rate_limit_per_minute": client.rate_limit_per_minute}
    form = ClientEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and client.is_active and form.is_valid():
        data = form.cleaned_data
        try:
            clients.update_client(actor=request.user, client=client, scopes=data["scopes"],
                                   expires_at=data["expires_at"], allowed_policies=list(data["allowed_policies"]),
                                   default_policies=list(data["default_policies"]), webhook_url=data["webhook_url"],
                                   rate_limit_per_minute=data["rate_limit_per_minute"])
        except errors.ClientError as exc:
            form.add_client_error(exc)
        else:
            messages.success(request, f"Saved {client.name}")
            return redirect(client)
    deliveries = client.deliveries.select_related("item")[:20]
    return render(request, "api/client_detail.html", {"client": client, "form": form, "deliveries": deliveries,
                                                      "token_days": settings.API_TOKEN_DEFAULT_DAYS})


@require_POST
@role_required(Role.ADMIN)
def client_rotate(request: HttpRequest, client_id: int) -> HttpResponse:
    try:
        client, token = clients.rotate_token(actor=request.user, client=_get_client_for_user(request, client_id))
    except errors.ClientError as exc:
        messages.error(request, str(exc))
        return redirect("api:client", client_id)
    # Rendered, not redirected: the new token exists only in this response and is never stored.
    return render(request, "api/client_token.html", {"client": client, "token": token})


@require_POST
@role_required(Role.ADMIN)
def client_revoke(request: HttpRequest, client_id: int) -> HttpResponse:
    client = clients.revoke_client(actor=request.user, client=_get_client_for_user(request, client_id))
    messages.success(request, f"The token of {client.name} no longer works")
    return redirect(client)


# --- webhook deliveries ----------------------------------------------------------------------------


@require_GET
@role_required(Role.ADMIN)
@vary_on_headers("HX-Request")
def delivery_log(request: HttpRequest) -> HttpResponse:
    deliveries = WebhookDelivery.objects.select_related("client", "item")
    client_id = request.GET.get("client", "")
    if client_id.isdigit():
        deliveries = deliveries.filter(client_id=int(client_id))
    status = request.GET.get("status", "")
    if status in DeliveryStatus.values:
        deliveries = deliveries.filter(status=status)
    page = Paginator(deliveries, 50).get_page(request.GET.get("page"))
    context = {"page": page, "clients": ApiClient.objects.all(), "statuses": DeliveryStatus.choices,
               "filters": {"client": client_id, "status": status}}
    template = "api/delivery_log.html#delivery-table" if request.htmx else "api/delivery_log.html"
    return render(request, template, context)


@require_GET
@role_required(Role.ADMIN)
def delivery_detail(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _get_delivery_for_user(request, delivery_id)
    return render(request, "api/delivery_detail.html", {"delivery": delivery})


@require_POST
@role_required(Role.ADMIN)
def delivery_redeliver(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = deliveries.redeliver(actor=request.user, delivery=_get_delivery_for_user(request, delivery_id))
    messages.success(request, f"Delivery #{delivery.pk} queued again")
    return redirect(delivery)


# --- first pass ------------------------------------------------------------------------------------


@require_GET
@role_required(Role.ADMIN)
def first_pass(request: HttpRequest) -> HttpResponse:
    policies = list(Policy.objects.all())
    routed = {p.pk: training.routed_version(p) for p in policies}
    thresholds = routing.thresholds_for([v for v in routed.values() if v])
    own_rules = {r.policy_version_id: r for r in RoutingRule.objects.filter(
        policy_version__in=[v for v in routed.values() if v])}
    models = {m.policy_id: m for m in FirstPassModel.objects.defer("model").latest_per_policy()}
    imported = dict(LabeledExample.objects.values_list("policy").annotate(n=Count("id")).values_list("policy", "n"))
    externals = {e.policy_id: e for e in ExternalFirstPass.objects.all()}
    misses = quality_checks.miss_rates(p.pk for p in policies)
    targeted = quality_checks.miss_rates((p.pk for p in policies), targeted=True)
    rows = []
    for policy in policies:
        version = routed[policy.pk]
        rule = thresholds.get(version.id) if version else None
        form = RoutingRuleForm(initial={
            "safe_below": rule.safe_below, "violation_above": rule.violation_above,
            "sample_rate": rule.sample_rate, "violations_to_humans": rule.violations_to_humans,
        }) if rule else None
        external = externals.get(policy.pk)
        external_form = ExternalFirstPassForm(initial={
            "url": external.url, "model": external.model, "timeout_s": external.timeout_s,
            "category_map": external_first_pass.format_category_map(external.category_map),
            "enabled": external.enabled,
        } if external else None, prefix=f"external-{policy.pk}")
        model = models.get(policy.pk)
        rows.append({"policy": policy, "version": version, "rule": rule, "form": form, "model": model,
                     "own_rule": own_rules.get(version.id) if version else None,
                     "proposal": model.metrics.get("cv", {}).get("proposal") if model else None,
                     "misses": misses.get(policy.pk), "targeted": targeted.get(policy.pk),
                     "imported": imported.get(policy.pk, 0),
                     "external": external, "external_form": external_form})
    return render(request, "api/first_pass.html", {"rows": rows})


@require_GET
@role_required(Role.ADMIN)
def first_pass_savings(request: HttpRequest) -> HttpResponse:
    raw = request.GET.get("days", "30")
    days = int(raw) if raw.isdigit() else 0
    context: dict[str, object] = {"ranges": savings.RANGES, "days": days, "time_zone": settings.TIME_ZONE}
    if days not in savings.RANGES:
        context["error"] = f"days: choose one of {', '.join(map(str, savings.RANGES))} (got {raw!r})"
        return render(request, "api/first_pass_savings.html", context, status=400)
    unit, overall, policies = savings.savings(days)
    context.update(unit=unit, overall=overall, policies=policies)
    return render(request, "api/first_pass_savings.html", context)


@require_POST
@role_required(Role.ADMIN)
def first_pass_retrain(request: HttpRequest, slug: str) -> HttpResponse:
    policy = _get_policy_for_user(request, slug)
    redis_client.queue(schedule.PERIODIC_QUEUE).enqueue(jobs.retrain_first_pass, policy.pk, True)
    messages.success(request, f"Retraining of {policy.name}'s first pass is queued; reload in a minute")
    return redirect("api:first-pass")


def _rule_change(request: HttpRequest, slug: str, change: Callable[[PolicyVersion], object], done: str
                 ) -> HttpResponse:
    """Run an admin's routing change for the version the policy routes by, and say how it went."""
    policy = _get_policy_for_user(request, slug)
    version = training.routed_version(policy)
    if version is None:
        messages.error(request, f"{policy.name} has no version to route")
        return redirect("api:first-pass")
    try:
        change(version)
    except errors.ClientError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{done}: {version}")
    return redirect("api:first-pass")


@require_POST
@role_required(Role.ADMIN)
def external_first_pass_edit(request: HttpRequest, slug: str) -> HttpResponse:
    policy = _get_policy_for_user(request, slug)
    form = ExternalFirstPassForm(request.POST, prefix=f"external-{policy.pk}")
    if not form.is_valid():
        messages.error(request, "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items()))
        return redirect("api:first-pass")
    data = form.cleaned_data
    api_key = "" if data["clear_api_key"] else (data["api_key"] or None)
    try:
        external_first_pass.set_external_first_pass(
            actor=request.user, policy=policy, url=data["url"], model=data["model"], api_key=api_key,
            timeout_s=data["timeout_s"], category_map=data["category_map"], enabled=data["enabled"])
    except errors.ClientError as exc:
        messages.error(request, f"{exc.field}: {exc}" if exc.field else str(exc))
    else:
        messages.success(request, f"External first pass of {policy.name} saved")
    return redirect("api:first-pass")


@require_POST
@role_required(Role.ADMIN)
def external_first_pass_remove(request: HttpRequest, slug: str) -> HttpResponse:
    policy = _get_policy_for_user(request, slug)
    if external_first_pass.remove_external_first_pass(actor=request.user, policy=policy):
        messages.success(request, f"{policy.name} is scored by its built-in first pass again")
    return redirect("api:first-pass")


@require_POST
@role_required(Role.ADMIN)
def routing_rule_edit(request: HttpRequest, slug: str) -> HttpResponse:
    form = RoutingRuleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items()))
        return redirect("api:first-pass")
    return _rule_change(request, slug, lambda version: routing.set_routing_rule(
        actor=request.user, version=version, **form.cleaned_data), "Routing saved and pinned")


@require_POST
@role_required(Role.ADMIN)
def routing_rule_pin(request: HttpRequest, slug: str) -> HttpResponse:
    pinned = request.POST.get("pinned") == "1"
    return _rule_change(request, slug, lambda version: routing.pin_routing_rule(
        actor=request.user, version=version, pinned=pinned), "Routing pinned" if pinned else "Routing unpinned")


@require_POST
@role_required(Role.ADMIN)
def routing_rule_revert(request: HttpRequest, slug: str) -> HttpResponse:
    return _rule_change(request, slug, lambda version: routing.revert_routing_rule(
        actor=request.user, version=version), "Routing reverted to the thresholds before (pinned)")
