"""The policy writers' URLs (namespace `policies`)."""

from __future__ import annotations

from django.urls import path

from policies_app import views

app_name = "policies"

urlpatterns = [
    path("", views.policy_list, name="list"),
    # Before <slug>/: "new" is a page, and views.RESERVED_SLUGS keeps policies from taking it.
    path("new/", views.policy_create, name="create"),
    path("<slug:slug>/", views.policy_detail, name="detail"),
    path("<slug:slug>/edit/", views.policy_edit, name="edit"),
    path("<slug:slug>/description/", views.policy_description, name="description"),
    path("<slug:slug>/history/", views.policy_history, name="history"),
    path("<slug:slug>/diff/", views.policy_diff, name="diff"),
    path("<slug:slug>/v<int:number>/", views.version_detail, name="version"),
    path("<slug:slug>/v<int:number>/publish/", views.version_publish, name="publish"),
    path("<slug:slug>/v<int:number>/rollback/", views.version_rollback, name="rollback"),
    path("<slug:slug>/v<int:number>/retire/", views.version_retire, name="retire"),
    path("<slug:slug>/v<int:number>/preview/", views.prompt_preview, name="preview"),
]
