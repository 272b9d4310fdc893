from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Ingestion API, routing and webhooks"
