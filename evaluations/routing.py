"""WebSocket routes of the evaluation workbench (mounted beside the review app's in console/asgi.py)."""

from __future__ import annotations

from django.urls import path

from evaluations import consumers

websocket_urlpatterns = [
    path("ws/evaluations/runs/<int:run_id>/", consumers.RunConsumer.as_asgi()),
]
