"""The audit log export: streamed CSV or JSON Lines for admins, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json

import pytest
from asgiref.sync import async_to_sync
from django.http import StreamingHttpResponse
from django.test import AsyncClient
from django.urls import reverse

from audit.writer import record
from tests.factories import make_policy

pytestmark = pytest.mark.django_db


def _body(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


def test_it_streams_every_event_as_csv_with_formula_cells_made_text(admin_client_, admin_user):
    version = make_policy(name="=HYPERLINK(\"http://evil.example\",\"click\")")
    record(actor=admin_user, action="note.added", obj=version, after={"note": "+1 looks fine"})

    response = admin_client_.get(reverse("console:audit-export", args=["csv"]))

    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert response["Content-Disposition"] == 'attachment; filename="audit-log.csv"'
    reprs = [row["object_repr"] for row in rows]
    assert any(value.startswith("'=HYPERLINK") for value in reprs)
    assert not any(value.startswith(("=", "+", "-", "@")) for row in rows for value in row.values())
    assert rows[-1]["action"] == "note.added" and json.loads(rows[-1]["after"]) == {"note": "+1 looks fine"}


def test_it_streams_json_lines_unchanged(admin_client_, admin_user):
    version = make_policy(name="=SUM(A1)")

    lines = _body(admin_client_.get(reverse("console:audit-export", args=["jsonl"]))).splitlines()

    events = [json.loads(line) for line in lines]
    assert any(e["object_repr"].startswith("=SUM(A1)") for e in events)
    assert {e["object_type"] for e in events} >= {version._meta.label_lower}


def test_only_admins_export_and_only_known_formats(moderator_client, admin_client_):
    assert moderator_client.get(reverse("console:audit-export", args=["csv"])).status_code == 403
    assert admin_client_.get(reverse("console:audit-export", args=["xlsx"])).status_code == 400


def test_under_asgi_it_streams_the_same_rows_through_an_async_iterator(admin_client_, admin_user):
    # Under ASGI Django would read a synchronous iterator whole before sending a byte (see
    # test_audit_export_memory.py for the server's memory); an async one is streamed as it goes.
    make_policy(name="Spam")
    url = reverse("console:audit-export", args=["jsonl"])

    async def export() -> tuple[bool, bytes]:
        client = AsyncClient()
        await client.aforce_login(admin_user)
        response = await client.get(url)
        return response.is_async, b"".join([part async for part in response.streaming_content])

    is_async, body = async_to_sync(export)()

    assert is_async
    assert body.decode() == _body(admin_client_.get(url))
