"""Forms for the admins' integration pages. They collect input; the services decide what is valid and
name the field at fault (ClientError.field), which the page shows beside it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from api.clients import default_expiry
from api.errors import ClientError
from api.models import Scope
from policies_app.models import Policy


class _ClientFields(forms.Form):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple,
        help_text="What the token may do; each API endpoint needs one of these.",
    )
    expires_at = forms.DateTimeField(
        label="Token expires", required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=f"Time zone {settings.TIME_ZONE}. Empty: the token never expires.",
    )
    allowed_policies = forms.ModelMultipleChoiceField(
        queryset=Policy.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="The only policies this client may classify under. None ticked: it may use none.",
    )
    default_policies = forms.ModelMultipleChoiceField(
        queryset=Policy.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Applied to items that name no policy; each must be allowed and needs a published version.",
    )
    webhook_url = forms.URLField(
        label="Webhook URL", required=False, max_length=500, assume_scheme="https",
        help_text="Final decisions are POSTed here, signed with the client's webhook secret.",
    )
    rate_limit_per_minute = forms.IntegerField(
        label="Rate limit (requests per minute)", required=False, min_value=1,
        help_text="Empty: the site default.",
    )

    def add_client_error(self, error: ClientError) -> None:
        self.add_error(error.field if error.field in self.fields else None, str(error))


class ClientCreateForm(_ClientFields):
    name = forms.CharField(max_length=100)
    source = forms.SlugField(
        max_length=100, required=False,
        help_text="Items from this client are stored under this source (default: from the name).",
    )
    field_order = ["name", "source", "scopes", "expires_at", "allowed_policies", "default_policies", "webhook_url",
                   "rate_limit_per_minute"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A new token starts with every scope and the default lifetime (API_TOKEN_DEFAULT_DAYS).
        kwargs.setdefault("initial", {"scopes": Scope.values, "expires_at": default_expiry()})
        super().__init__(*args, **kwargs)


class ClientEditForm(_ClientFields):
    pass


class RoutingRuleForm(forms.Form):
    safe_below = forms.FloatField(min_value=0, max_value=1, label="Close when the score is below")
    violation_above = forms.FloatField(min_value=0, max_value=1, label="Confident violation at or above")
    sample_rate = forms.FloatField(min_value=0, max_value=1, label="Share of closed items sampled to people")
    violations_to_humans = forms.BooleanField(required=False, label="Send confident violations straight to people")


class ExternalFirstPassForm(forms.Form):
    url = forms.CharField(label="Endpoint URL", max_length=500,
                          help_text="An OpenAI-compatible moderation endpoint, e.g. https://guard:8000/v1/moderations")
    model = forms.CharField(label="Model", required=False, max_length=200, help_text="Sent as `model`; may be empty")
    api_key = forms.CharField(label="API key", required=False, max_length=500,
                              widget=forms.PasswordInput(render_value=False),
                              help_text="Sent as a bearer token. Empty: keep the stored key.")
    clear_api_key = forms.BooleanField(label="Drop the stored key", required=False)
    timeout_s = forms.FloatField(label="Timeout (s)", initial=2.0, help_text="Intake waits this long at most")
    category_map = forms.CharField(
        label="Categories", widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text="One 'endpoint category = policy code' a line ('violation' for policies without categories); "
                  "the score is the highest mapped one",
    )
    enabled = forms.BooleanField(label="Use it as this policy's first pass", required=False, initial=True)
