"""Forms for the policy pages. They only collect and show input: the services decide what is valid
(empty text, duplicate names, label codes) so the rules live in one place; a refusal comes back as a
PolicyError naming its field and is shown beside it."""

from __future__ import annotations

from typing import Any

from django import forms

from policies_app.models import ContentKind, LabelScheme, OutputFormat, PolicyVersion, ReasoningEffort
from policies_app.services import PolicyError


class VersionForm(forms.Form):
    """What one policy version says: the text and the settings the model is asked to answer with."""

    # Not `required` here: the service refuses an empty text with a message that says what to do.
    text = forms.CharField(
        label="Policy text",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 28, "spellcheck": "true", "class": "policy-editor", "required": True}),
        help_text="What the model reads as its instructions. Rule IDs such as SP2.a are highlighted on the "
        "policy page; 400–600 tokens work best.",
    )
    label_scheme = forms.ChoiceField(label="Label scheme", choices=LabelScheme.choices)
    labels = forms.CharField(
        label="Category codes",
        required=False,
        max_length=1000,
        help_text="Only for the categories scheme: comma-separated codes, e.g. SP0, SP2, SP3.",
    )
    output_format = forms.ChoiceField(label="Output format", choices=OutputFormat.choices)
    reasoning_effort = forms.ChoiceField(
        label="Reasoning effort", choices=ReasoningEffort.choices, initial=ReasoningEffort.MEDIUM
    )
    change_note = forms.CharField(
        label="Change note",
        required=False,
        max_length=300,
        help_text="Why this version: shown in the history and the audit log.",
    )

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "text": data["text"],
            "label_scheme": data["label_scheme"],
            "labels": data["labels"],
            "output_format": data["output_format"],
            "reasoning_effort": data["reasoning_effort"],
            "change_note": data["change_note"],
        }

    def add_policy_error(self, error: PolicyError) -> None:
        """Show a service's refusal beside the field it names (or above the form)."""
        field = error.field if error.field in self.fields else None
        self.add_error(field, " ".join(error.messages))

    @staticmethod
    def initial_from(version: PolicyVersion) -> dict[str, Any]:
        return {
            "text": version.text,
            "label_scheme": version.label_scheme,
            "labels": ", ".join(version.labels) if version.label_scheme == LabelScheme.CATEGORIES else "",
            "output_format": version.output_format,
            "reasoning_effort": version.reasoning_effort,
        }


class PolicyCreateForm(VersionForm):
    name = forms.CharField(label="Name", required=False, widget=forms.TextInput(attrs={"required": True}))
    description = forms.CharField(
        label="Description", required=False, max_length=300, help_text="One line for the policy list."
    )

    field_order = ["name", "description", "text", "label_scheme", "labels", "output_format",
                   "reasoning_effort", "change_note"]

    def service_kwargs(self) -> dict[str, Any]:
        return {
            **super().service_kwargs(),
            "name": self.cleaned_data["name"],
            "description": self.cleaned_data["description"],
        }


class PolicyEditForm(VersionForm):
    # The version the writer started from; the service refuses the save if a newer one appeared.
    base_number = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class DescriptionForm(forms.Form):
    description = forms.CharField(
        label="Description", required=False, max_length=300, help_text="One line for the policy list."
    )


class PreviewForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=ContentKind.choices, initial=ContentKind.MESSAGE)
    sample = forms.CharField(
        label="Sample content",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        error_messages={"required": "Write a sample to see the prompt the model would read."},
        help_text="For a conversation, one turn per line as role: content (e.g. user: hi).",
    )
