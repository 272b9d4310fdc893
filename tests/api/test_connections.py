"""Under load, the ASGI server holds a bounded number of PostgreSQL connections (it used to keep one per
worker thread per minute until PostgreSQL refused everyone)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connection

from api import clients
from tests.browser import live
from tests.factories import make_policy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CLIENTS = 8
REQUESTS = 2_000


def _server_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_few_thousand_requests_leave_the_servers_connections_bounded(tmp_path):
    version = make_policy(name="Spam")
    _, token = clients.create_client(actor=None, name="Load", default_policies=[version.policy],
                                     rate_limit_per_minute=1_000_000)
    headers = {"Authorization": f"Bearer {token}"}
    peak = [0]
    stop = threading.Event()

    def watch() -> None:
        try:
            while not stop.is_set():
                peak[0] = max(peak[0], _server_connections() - 1)  # less the test's own main-thread connection
                time.sleep(0.05)
        finally:
            connection.close()  # this thread's own

    with live.console_processes(database=connection.settings_dict, workdir=tmp_path, worker=False) as url:
        baseline = _server_connections()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        def hit(n: int) -> int:
            with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
                codes = []
                for i in range(n, REQUESTS, CLIENTS):
                    if i % 4 == 0:
                        response = http.post("/api/v1/items", json={"external_id": f"load-{i}", "content": "hi"})
                    else:
                        response = http.get("/api/v1/policies")
                    codes.append(response.status_code)
                return sum(code >= 400 for code in codes)

        try:
            with ThreadPoolExecutor(CLIENTS) as pool:
                failures = sum(pool.map(hit, range(CLIENTS)))
        finally:
            stop.set()
            watcher.join(5)
        settled = _server_connections()

    print(f"connections: baseline {baseline}, peak {peak[0]}, settled {settled}")
    assert failures == 0
    # One connection per request in flight at most (daphne runs sync views on a small thread pool), and
    # none kept once the requests are answered.
    assert peak[0] <= baseline + CLIENTS + 2, (baseline, peak[0])
    assert settled <= baseline + 1, (baseline, settled)
