"""The review app's URLs (namespace `console`): queue, items, decisions, dashboard, audit log, team."""

from django.urls import path

from console import health, metrics, quality_views, views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    # the review console
    path("items/", views.item_list, name="items"),
    path("items/<int:item_id>/", views.item_detail, name="item"),
    path("items/<int:item_id>/claim/", views.claim, name="claim"),
    path("items/<int:item_id>/release/", views.release, name="release"),
    path("items/<int:item_id>/comment/", views.comment, name="comment"),
    path("items/bulk-approve/", views.bulk_approve, name="bulk-approve"),
    path("next/", views.next_item, name="next"),
    path("reviews/<int:classification_id>/approve/", views.approve, name="approve"),
    path("reviews/<int:classification_id>/override/", views.override, name="override"),
    path("reviews/<int:classification_id>/escalate/", views.escalate, name="escalate"),
    path("reviews/<int:classification_id>/skip/", views.skip, name="skip"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("wellness/", views.wellness, name="wellness"),
    # how model answers were read (parse quality)
    path("answers/policies/<slug:slug>/", quality_views.policy_answer_quality, name="answer-quality"),
    path("answers/versions/<int:version_id>/<str:quality>/", quality_views.answer_examples, name="answer-examples"),
    # administration
    path("audit/", views.audit_log, name="audit"),
    path("audit/export.<str:fmt>", views.audit_export, name="audit-export"),
    path("audit/checkpoint.json", views.audit_checkpoint, name="audit-checkpoint"),
    path("team/", views.team, name="team"),
]
