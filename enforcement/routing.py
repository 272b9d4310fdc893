"""WebSocket routes of the appeals queue (mounted beside the review app's in console/asgi.py)."""

from __future__ import annotations

from django.urls import path

from enforcement import consumers

websocket_urlpatterns = [
    path("ws/appeals/", consumers.AppealQueueConsumer.as_asgi()),
]
