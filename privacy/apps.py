"""The privacy app: how long each source's content, reasoning and raw outputs are kept (retention), and
erasure requests that redact one item's text everywhere while its decisions and the audit chain stay."""

from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = "Retention and erasure"
