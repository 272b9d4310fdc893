"""The API (under /api/v1/ and /v1/moderations) and the console's pages for admins (under /integrations/)."""

from __future__ import annotations

from django.urls import path

from api import erasures, moderations, pages, views

app_name = "api"

urlpatterns = [
    path("api/v1/schema.json", views.openapi_schema, name="schema"),
    path("api/v1/policies", views.policy_list, name="policies"),
    path("api/v1/items", views.item_create, name="items"),
    path("api/v1/items/batch", views.item_batch, name="items-batch"),
    path("api/v1/items/<int:item_id>", views.item_detail, name="item"),
    path("api/v1/items/<int:item_id>/statements", views.item_statements, name="item-statements"),
    path("api/v1/items/<int:item_id>/appeals", views.item_appeals, name="item-appeals"),
    path("api/v1/items/by-external-id/<path:external_id>", views.item_by_external_id, name="item-by-external-id"),
    path("api/v1/erasures", erasures.erasure_create, name="erasures"),
    path("v1/moderations", moderations.create_moderation, name="moderations"),
    path("integrations/clients/", pages.client_list, name="clients"),
    path("integrations/clients/new/", pages.client_create, name="client-create"),
    path("integrations/clients/<int:client_id>/", pages.client_detail, name="client"),
    path("integrations/clients/<int:client_id>/rotate/", pages.client_rotate, name="client-rotate"),
    path("integrations/clients/<int:client_id>/revoke/", pages.client_revoke, name="client-revoke"),
    path("integrations/webhooks/", pages.delivery_log, name="deliveries"),
    path("integrations/webhooks/<int:delivery_id>/", pages.delivery_detail, name="delivery"),
    path("integrations/webhooks/<int:delivery_id>/redeliver/", pages.delivery_redeliver, name="delivery-redeliver"),
    path("integrations/first-pass/", pages.first_pass, name="first-pass"),
    path("integrations/first-pass/savings/", pages.first_pass_savings, name="first-pass-savings"),
    path("integrations/first-pass/<slug:slug>/retrain/", pages.first_pass_retrain, name="first-pass-retrain"),
    path("integrations/first-pass/<slug:slug>/routing/", pages.routing_rule_edit, name="routing-rule"),
    path("integrations/first-pass/<slug:slug>/external/", pages.external_first_pass_edit, name="external-first-pass"),
    path("integrations/first-pass/<slug:slug>/external/remove/", pages.external_first_pass_remove,
         name="external-first-pass-remove"),
    path("integrations/first-pass/<slug:slug>/routing/pin/", pages.routing_rule_pin, name="routing-rule-pin"),
    path("integrations/first-pass/<slug:slug>/routing/revert/", pages.routing_rule_revert, name="routing-rule-revert"),
]
