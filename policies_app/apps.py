"""The policies app: policies and their immutable versions."""

from django.apps import AppConfig


class PoliciesAppConfig(AppConfig):
    name = "policies_app"
    verbose_name = "Policies"
