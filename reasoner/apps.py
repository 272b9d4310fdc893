"""The reasoner app (no models of its own: it works the console's classifications)."""

from django.apps import AppConfig


class ReasonerConfig(AppConfig):
    name = "reasoner"
    verbose_name = "Reasoner (gpt-oss-safeguard worker)"
