"""Forms of the review console: the queue's filters and the decisions a moderator types."""

from __future__ import annotations

from typing import Any

from django import forms

from console.models import ReviewQueue, Stage

QUEUE_CHOICES = [("all", "All open"), *ReviewQueue.choices]
ORDER_CHOICES = [("oldest", "Oldest first"), ("priority", "By priority")]


class QueueFilterForm(forms.Form):
    """What the queue page shows. Every field is optional; an invalid value is reported, not ignored."""

    queue = forms.ChoiceField(choices=QUEUE_CHOICES, required=False)
    policy = forms.SlugField(max_length=120, required=False)
    label = forms.CharField(max_length=60, required=False)
    stage = forms.ChoiceField(choices=[("", "Any stage"), *Stage.choices], required=False)
    source = forms.CharField(max_length=100, required=False)
    min_confidence = forms.FloatField(min_value=0, max_value=1, required=False, label="Confidence from")
    max_confidence = forms.FloatField(min_value=0, max_value=1, required=False, label="to")
    since = forms.DateField(required=False, label="Received from", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="until", widget=forms.DateInput(attrs={"type": "date"}))
    order = forms.ChoiceField(choices=ORDER_CHOICES, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        low, high = data.get("min_confidence"), data.get("max_confidence")
        if low is not None and high is not None and low > high:
            self.add_error("max_confidence", "The upper confidence bound is below the lower one")
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date")
        return data


class OverrideForm(forms.Form):
    """A corrected verdict. The label choices come from the policy version the model used."""

    label = forms.ChoiceField(required=False, label="Correct label")
    category = forms.CharField(max_length=60, required=False, label="Correct category")
    reason = forms.CharField(max_length=500, label="Reason", strip=True)
    misapplied_rule = forms.ChoiceField(required=False, label="Rule the model misapplied")

    def __init__(self, *args: Any, labels: list[tuple[str, str]], rules: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["label"].choices = [("", "—"), *labels]
        self.fields["misapplied_rule"].choices = [("", "— none —"), *((rule, rule) for rule in rules)]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("label") and not (data.get("category") or "").strip():
            self.add_error("label", "Choose the correct label (or type the correct category)")
        return data


class ReasonForm(forms.Form):
    """Why an item goes to a senior."""

    reason = forms.CharField(max_length=500, label="Why a senior should look", strip=True)


class CommentForm(forms.Form):
    text = forms.CharField(max_length=5000, label="Comment", strip=True, widget=forms.Textarea(attrs={"rows": 2}))
