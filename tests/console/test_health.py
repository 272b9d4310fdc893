"""The probes: /healthz says the process answers, /readyz whether it can work, as JSON, without a login."""

from __future__ import annotations

import socket

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection
from django.test import Client

from tests.console.reviewing import make_verdict

pytestmark = pytest.mark.django_db


def test_healthz_answers_json_without_a_login_or_the_database(monkeypatch):
    def no_database(*args, **kwargs):
        raise DatabaseError("the database is away")

    # Any query on this request's connection would now fail: healthz must not make one.
    monkeypatch.setattr(connection, "cursor", no_database)

    response = Client().get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_reports_the_database_redis_the_engine_and_queue_depths(settings):
    settings.SAFEGUARD_BACKEND = "scripted"
    make_verdict(status="unparsable")

    body = Client().get("/readyz").json()

    assert body["status"] == "ready" and body["engine"] == "scripted"
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["queues"]["awaiting_review"] == 1 and body["queues"]["reasoner_queued"] == 0


def test_readyz_is_a_json_503_naming_what_failed(settings):
    # A real outage: the queues' Redis is a port nobody listens on.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    settings.RQ_QUEUES = {name: {**config, "URL": closed} for name, config in settings.RQ_QUEUES.items()}

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready" and body["checks"]["database"]["ok"]
    redis_check = body["checks"]["redis"]
    assert redis_check["ok"] is False
    assert redis_check["error"].startswith("ConnectionError:") and "refused" in redis_check["error"]


def test_rqs_own_dashboard_is_not_mounted():
    root = get_user_model().objects.create_superuser(username="root", password="root-password-1234")
    client = Client()
    client.force_login(root)

    assert client.get("/admin/rq/").status_code == 404
    assert client.get("/admin/").status_code == 200
    assert b"django_rq" not in client.get("/admin/").content
