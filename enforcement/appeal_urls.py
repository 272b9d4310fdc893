"""The appeals URLs (namespace `appeals`, under /appeals/)."""

from __future__ import annotations

from django.urls import path

from enforcement import appeal_pages

app_name = "appeals"

urlpatterns = [
    path("", appeal_pages.appeal_queue, name="queue"),
    path("<int:appeal_id>/", appeal_pages.appeal_detail, name="detail"),
    path("<int:appeal_id>/decide/", appeal_pages.appeal_decide, name="decide"),
    path("file/<int:item_id>/", appeal_pages.appeal_file, name="file"),
]
