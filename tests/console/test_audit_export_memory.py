"""The audit export streams from a real server: 200,000 events leave daphne's memory nearly where it was,
and the first rows arrive long before the last. (Under ASGI, Django reads a synchronous iterator whole
before sending a byte: 142 MB for 158,000 events, before the export gave the ASGI handler an async one.)"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psutil
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client

from accounts.roles import Role, set_roles
from audit.models import AuditEvent
from tests.browser import live

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EVENTS = 200_000
# What the server may grow by while it exports them all. Streamed, it grows by a few MB (the rows of
# one cursor fetch and one response chunk); read whole, 200,000 events take well over 100 MB.
GROWTH_LIMIT_MB = 40


def _store_events(count: int) -> None:
    """`count` events in one INSERT ... SELECT, oldest first, each with a JSON after-image like real ones."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (actor_id, actor_name, action, object_type, object_id, object_repr, before, "
            "after, created_at) "
            "SELECT NULL, 'system:loadtest', 'item.ingested', 'console.item', n::text, 'item ' || n, NULL, "
            "jsonb_build_object('stage', 'queued', 'external_id', 'ext-' || n), "
            "now() - make_interval(secs => (%(count)s - n) / 1000.0) "
            "FROM generate_series(1, %(count)s) AS n",
            {"count": count},
        )


def _server_pid(base_url: str) -> int:
    """The process listening on the server's port (daphne itself, not the `python -m` it was started as)."""
    port = int(base_url.rsplit(":", 1)[1])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    raise AssertionError(f"no process listens on port {port}")


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def _server_connections() -> int:
    """Connections to the test database other than this test's own."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def _admin_cookie() -> dict[str, str]:
    for role in Role:  # a transactional test empties the role groups the data migration made
        Group.objects.get_or_create(name=role.value)
    admin = get_user_model().objects.create_user(username="ada")
    set_roles(actor=None, user=admin, roles={Role.ADMIN})
    client = Client()
    client.force_login(admin)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


def _download(http: httpx.Client, path: str) -> tuple[int, float | None, float]:
    """(lines, seconds to the first bytes, seconds in all) of one streamed export, read chunk by chunk."""
    started = time.monotonic()
    first = None
    lines = 0
    with http.stream("GET", path) as response:
        assert response.status_code == 200, response.read()[:500]
        for chunk in response.iter_bytes():
            if first is None and chunk:
                first = time.monotonic() - started
            lines += chunk.count(b"\n")
    return lines, first, time.monotonic() - started


@pytest.mark.parametrize(("fmt", "extra_lines"), [("csv", 1), ("jsonl", 0)])
def test_it_exports_two_hundred_thousand_events_in_bounded_server_memory(tmp_path, fmt, extra_lines):
    cookies = _admin_cookie()
    _store_events(EVENTS)
    stored = AuditEvent.objects.count()  # the stored ones, and the role change and sign-in of the admin
    assert stored >= EVENTS

    with live.console_processes(database=connection.settings_dict, workdir=tmp_path, worker=False) as url:
        pid = _server_pid(url)
        with httpx.Client(base_url=url, cookies=cookies, timeout=120) as http:
            # Once through an empty selection first, so the baseline holds what any request loads.
            assert _download(http, f"/audit/export.{fmt}?action=nothing-matches")[0] == extra_lines
            baseline_kb = _status_kb(pid, "VmRSS")
            lines, first_s, total_s = _download(http, f"/audit/export.{fmt}")
            growth_mb = (_status_kb(pid, "VmHWM") - baseline_kb) / 1024

            # A client that leaves mid-export leaves no connection (and so no open cursor) behind.
            with http.stream("GET", f"/audit/export.{fmt}") as response:
                next(response.iter_bytes())
            deadline = time.monotonic() + 10
            while (left := _server_connections()) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert left == 0, left

    print(f"{fmt}: {lines} lines, first bytes {first_s} s, all {total_s:.2f} s, "
          f"peak RSS growth {growth_mb:.1f} MB over {baseline_kb / 1024:.0f} MB")
    assert lines == stored + extra_lines
    assert growth_mb < GROWTH_LIMIT_MB, growth_mb
    assert first_s is not None and first_s < total_s / 5, (first_s, total_s)
