"""The audit chain in the console: the admins' signed checkpoint download, the red banner a failed
verification raises on every page until the chain verifies again, and the /metrics gauge."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from audit import chain, jobs
from audit.models import AuditEvent
from tests.audit import tampering
from tests.factories import make_policy

pytestmark = pytest.mark.django_db

BANNER = "The audit trail's hash chain is broken"


def test_admins_download_a_signed_checkpoint_of_the_verified_head(admin_client_):
    make_policy()
    head = AuditEvent.objects.order_by("-seq").first()

    response = admin_client_.get(reverse("console:audit-checkpoint"))

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="audit-checkpoint-{head.seq}.json"'
    data = response.json()
    assert (data["seq"], data["hash"]) == (head.seq, head.hash)
    chain.check_checkpoint(data)


def test_only_admins_download_checkpoints(moderator_client, writer_client):
    assert moderator_client.get(reverse("console:audit-checkpoint")).status_code == 403
    assert writer_client.get(reverse("console:audit-checkpoint")).status_code == 403


def test_a_broken_chain_gets_no_checkpoint_download(admin_client_):
    make_policy()
    tampering.alter(1, note="x")

    response = admin_client_.get(reverse("console:audit-checkpoint"))

    assert response.status_code == 409
    assert "audit chain broken at seq 1" in response.json()["error"]


def test_a_failed_scheduled_verification_shows_admins_a_banner_until_the_chain_verifies(
        admin_client_, moderator_client, caplog):
    make_policy()
    event = AuditEvent.objects.get(seq=2)
    original = event.after
    assert BANNER not in admin_client_.get(reverse("console:audit")).content.decode()

    tampering.alter(2, note="rewritten")
    assert jobs.verify_chain() is False

    assert any(r.levelname == "ERROR" and "audit chain broken at seq 2" in r.getMessage() for r in caplog.records)
    for page in ("console:audit", "console:team", "console:items"):
        assert BANNER in admin_client_.get(reverse(page)).content.decode()
    assert BANNER not in moderator_client.get(reverse("console:items")).content.decode()

    tampering.behind_the_trigger((f"UPDATE {tampering.TABLE} SET after = %s WHERE seq = 2",
                                  [json.dumps(original)]))
    assert jobs.verify_chain() is True
    assert BANNER not in admin_client_.get(reverse("console:audit")).content.decode()


def _gauge(name: str) -> float | None:
    text = Client().get("/metrics").content.decode()
    values = {s.name: s.value for family in text_string_to_metric_families(text) for s in family.samples}
    return values.get(name)


def test_metrics_report_the_newest_verification():
    make_policy()
    assert _gauge("console_audit_chain_intact") is None  # never checked

    jobs.verify_chain()
    assert _gauge("console_audit_chain_intact") == 1
    tampering.alter(1, note="x")
    jobs.verify_chain()
    assert _gauge("console_audit_chain_intact") == 0
    assert _gauge("console_audit_chain_checked_timestamp_seconds") > 0
