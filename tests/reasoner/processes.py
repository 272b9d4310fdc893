"""Real reasoner worker processes for end-to-end and fault tests, and the audit trail they leave."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Count

from audit.models import AuditEvent
from tests.browser import live

ROOT = Path(settings.BASE_DIR)


def start_worker(log: Path, *args: str, **env: str) -> subprocess.Popen:
    """`manage.py safeguard_worker [args]` with the scripted engine on the test database; output in `log`."""
    child_env = {**os.environ, "DATABASE_URL": live.database_url(connection.settings_dict),
                 "SAFEGUARD_BACKEND": "scripted", **env}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "safeguard_worker", *args], cwd=ROOT, env=child_env, stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_until(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> float:
    """Poll `condition` until it holds; the seconds it took. Fails the test, with the log, on timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"timed out waiting until {what}; worker log:\n{log.read_text()[-6000:]}")


def stop(worker: subprocess.Popen) -> int:
    """SIGTERM (the worker finishes its batch), and its exit code."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        return worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        raise


def events_per_classification(ids: Iterable[int]) -> dict[str, dict[str, int]]:
    """{audit action: {classification id: how many such events}} for these classifications."""
    rows = (
        AuditEvent.objects.filter(object_type="console.classification", object_id__in=[str(pk) for pk in ids])
        .values("object_id", "action")
        .annotate(n=Count("id"))
    )
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["action"], {})[row["object_id"]] = row["n"]
    return counts
