"""WebSocket routes of the live queue and item pages (wrapped in auth and origin checks in asgi.py)."""

from __future__ import annotations

from django.urls import path

from console import consumers

websocket_urlpatterns = [
    path("ws/queue/", consumers.QueueConsumer.as_asgi()),
    path("ws/items/<int:item_id>/", consumers.ItemConsumer.as_asgi()),
]
