"""Request ids on responses and log records, and LOG_FORMAT=json: one JSON object per line, read the way a
server process writes them."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client

from console.request_ids import RequestIdFilter

ROOT = Path(__file__).resolve().parents[2]
REQUEST_ID = re.compile(r"[0-9a-f]{16}")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_every_response_carries_its_own_request_id():
    first, second = Client().get("/healthz"), Client().get("/healthz")

    assert REQUEST_ID.fullmatch(first["X-Request-Id"]) and REQUEST_ID.fullmatch(second["X-Request-Id"])
    assert first["X-Request-Id"] != second["X-Request-Id"]


def test_a_proxys_well_formed_request_id_is_kept_and_anything_else_replaced():
    kept = Client().get("/healthz", headers={"X-Request-Id": "lb-7f3a9c21-0001"})
    replaced = Client().get("/healthz", headers={"X-Request-Id": "no spaces or\u00e9 allowed"})

    assert kept["X-Request-Id"] == "lb-7f3a9c21-0001"
    assert REQUEST_ID.fullmatch(replaced["X-Request-Id"])


def test_records_logged_during_a_request_carry_its_id_and_others_none():
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        response = Client().post("/healthz")  # django.request logs the 405
        logging.getLogger("console.test").warning("outside any request")
    finally:
        root.removeHandler(handler)

    [during] = [r for r in handler.records if r.name == "django.request"]
    assert during.getMessage() == "Method Not Allowed (POST): /healthz"
    assert during.request_id == response["X-Request-Id"]
    [outside] = [r for r in handler.records if r.name == "console.test"]
    assert not hasattr(outside, "request_id")


def test_under_asgi_too_records_carry_the_requests_id():
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        response = async_to_sync(AsyncClient().post)("/healthz")  # as daphne runs it
    finally:
        root.removeHandler(handler)

    [during] = [r for r in handler.records if r.name == "django.request"]
    assert REQUEST_ID.fullmatch(response["X-Request-Id"])
    assert during.request_id == response["X-Request-Id"]


SCRIPT = """
import logging, django
django.setup()
from django.test import Client
log = logging.getLogger("console.test")
log.info("a plain line")
try:
    {}["missing"]
except KeyError:
    log.exception("it broke")
print(Client().post("/healthz", HTTP_HOST="localhost")["X-Request-Id"])
"""


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", "STATIC_ROOT": str(tmp_path), **env}
    return subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=60)


def test_json_logs_are_one_object_per_line_with_the_traceback_inside(tmp_path):
    result = _run(tmp_path, LOG_FORMAT="json")

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # every line is one JSON object
    by_message = {line["message"]: line for line in lines}
    plain = by_message["a plain line"]
    assert (plain["level"], plain["logger"]) == ("INFO", "console.test")
    assert datetime.fromisoformat(plain["timestamp"]).utcoffset().total_seconds() == 0
    assert "request_id" not in plain
    broke = by_message["it broke"]
    assert broke["level"] == "ERROR"
    assert broke["exc_info"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in broke["exc_info"]
    refused = by_message["Method Not Allowed (POST): /healthz"]
    assert (refused["logger"], refused["level"]) == ("django.request", "WARNING")
    assert refused["request_id"] == result.stdout.strip()


def test_text_logs_stay_plain_messages(tmp_path):
    result = _run(tmp_path, LOG_FORMAT="text")

    assert result.returncode == 0, result.stderr
    assert "a plain line\n" in result.stderr and "Traceback (most recent call last):" in result.stderr
    assert not result.stderr.lstrip().startswith("{")


def test_an_unknown_log_format_stops_the_server_from_starting(tmp_path):
    result = _run(tmp_path, LOG_FORMAT="xml")

    assert result.returncode != 0
    assert "LOG_FORMAT must be 'text' or 'json'" in result.stderr
