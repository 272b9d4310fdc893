"""The accounts app (no models: roles are Django groups, see `accounts.roles`)."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and roles"
