"""The forms of the enforcement pages."""

from __future__ import annotations

from typing import Any

from django import forms

from enforcement.models import ActionType, DecisionGround
from enforcement.rules import MAX_DURATION_DAYS
from enforcement.transparency import CATEGORIES


class RuleForm(forms.Form):
    code = forms.CharField(max_length=60)
    action = forms.ChoiceField(choices=ActionType.choices)
    duration_days = forms.IntegerField(required=False, min_value=1, max_value=MAX_DURATION_DAYS)
    category = forms.ChoiceField(choices=[("", "Default"), *[(c, c) for c in CATEGORIES]], required=False)


class ActionForm(forms.Form):
    action = forms.ChoiceField(choices=ActionType.choices)
    duration_days = forms.IntegerField(required=False, min_value=1, max_value=MAX_DURATION_DAYS)
    facts = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), max_length=5000)
    decision_ground = forms.ChoiceField(choices=DecisionGround.choices, required=False)
    legal_ground = forms.CharField(required=False, max_length=500)


class ExportForm(forms.Form):
    since = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class ReportForm(forms.Form):
    since = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The period ends before it starts: choose a day on or after the first day")
        return data
