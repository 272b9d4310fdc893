"""Django admin: read-only views of the API's rows. Clients, thresholds, external first passes and
retraining are managed on the console's integration pages, where every change is validated and audited."""

from __future__ import annotations

from django.contrib import admin

from api.models import ApiClient, ExternalFirstPass, FirstPassModel, LabeledExample, Route, RoutingRule, WebhookDelivery
from audit.admin import ReadOnlyAdmin


@admin.register(ApiClient)
class ApiClientAdmin(ReadOnlyAdmin):
    list_display = ("name", "source", "token_prefix", "scopes", "expires_at", "webhook_url", "rate_limit_per_minute",
                    "last_used_at", "revoked_at")
    exclude = ("token_hash", "webhook_secret")
    search_fields = ("name", "source", "token_prefix")


@admin.register(RoutingRule)
class RoutingRuleAdmin(ReadOnlyAdmin):
    list_display = ("policy_version", "safe_below", "violation_above", "sample_rate", "violations_to_humans",
                    "updated_at")
    list_select_related = ("policy_version__policy",)


@admin.register(FirstPassModel)
class FirstPassModelAdmin(ReadOnlyAdmin):
    list_display = ("id", "policy", "trained_at", "n_examples", "n_positive")
    exclude = ("model",)
    list_filter = ("policy",)


@admin.register(ExternalFirstPass)
class ExternalFirstPassAdmin(ReadOnlyAdmin):
    list_display = ("policy", "url", "model", "timeout_s", "enabled", "updated_at")
    exclude = ("api_key",)


@admin.register(LabeledExample)
class LabeledExampleAdmin(ReadOnlyAdmin):
    list_display = ("id", "policy", "dataset", "violation", "label", "created_at")
    list_filter = ("policy", "dataset", "violation")
    search_fields = ("text",)


@admin.register(Route)
class RouteAdmin(ReadOnlyAdmin):
    list_display = ("item", "policy_version", "route", "score", "model", "created_at")
    list_filter = ("route",)
    list_select_related = ("item", "policy_version__policy")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "client", "item", "event", "status", "attempts", "response_code", "created_at")
    list_filter = ("status", "client")
    list_select_related = ("client", "item")
