"""Settings that come from the environment, read the way a server process reads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _settings(**env: str) -> dict:
    script = ("import json, django; from django.conf import settings; django.setup(); print(json.dumps({k: "
              "getattr(settings, k) for k in ('SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
              "'API_RATE_LIMIT_WITHOUT_REDIS')}))")
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", **env}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environ, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_secure_cookies_also_turn_on_hsts():
    assert _settings(SECURE_COOKIES="1") == {"SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
                                             "SECURE_HSTS_SECONDS": 31_536_000, "API_RATE_LIMIT_WITHOUT_REDIS": "open"}
    assert _settings(SECURE_COOKIES="0")["SECURE_HSTS_SECONDS"] == 0


def test_an_unknown_rate_limit_fallback_stops_the_server_from_starting():
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", "API_RATE_LIMIT_WITHOUT_REDIS": "maybe"}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=environ,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "API_RATE_LIMIT_WITHOUT_REDIS must be 'open' or 'closed'" in result.stderr


def _database_roles(**env: str) -> subprocess.CompletedProcess:
    script = ("import json, django; from django.conf import settings; django.setup(); "
              "print(json.dumps([settings.DATABASE_APP_ROLE, settings.DATABASE_OWNER]))")
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings", **env}
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=60)


def test_an_owner_url_makes_database_urls_user_the_application_role():
    result = _database_roles(DATABASE_URL="postgres://console_app:app-secret@db:5432/console",
                             DATABASE_OWNER_URL="postgres://console:owner-secret@db:5432/console")

    assert result.returncode == 0, result.stderr
    role, owner = json.loads(result.stdout.strip().splitlines()[-1])
    assert role == "console_app"
    assert owner == {"USER": "console", "PASSWORD": "owner-secret", "HOST": "db", "PORT": 5432, "OPTIONS": {}}
    single = _database_roles(DATABASE_URL="postgres://console:owner-secret@db:5432/console", DATABASE_OWNER_URL="")
    assert json.loads(single.stdout.strip().splitlines()[-1]) == ["", {}]  # one role: no grants


def test_an_owner_url_for_another_database_or_the_same_role_stops_the_server_from_starting():
    elsewhere = _database_roles(DATABASE_URL="postgres://console_app:x@db/console",
                                DATABASE_OWNER_URL="postgres://console:y@db/other")
    same_role = _database_roles(DATABASE_URL="postgres://console:x@db/console",
                                DATABASE_OWNER_URL="postgres://console:x@db/console")

    assert elsewhere.returncode != 0
    assert "DATABASE_OWNER_URL must name the database DATABASE_URL names" in elsewhere.stderr
    assert same_role.returncode != 0
    assert "DATABASE_URL must name the application's own role" in same_role.stderr
