"""The enforcement URLs (namespace `enforcement`)."""

from __future__ import annotations

from django.urls import path

from enforcement import views

app_name = "enforcement"

urlpatterns = [
    path("policies/<slug:slug>/", views.policy_rules, name="policy"),
    path("items/<int:item_id>/", views.item_enforcement, name="item"),
    path("actions/<int:action_id>/", views.action_edit, name="action-edit"),
    path("export/", views.export, name="export"),
    path("report/", views.transparency_report, name="report"),
    path("report.<str:fmt>", views.transparency_report, name="report-download"),
]
