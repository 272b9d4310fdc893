"""Probes for process managers and load balancers: /healthz (the process answers) and /readyz (it can do
its work: the database and Redis answer; with the engine setting and the queue depths for operators)."""

from __future__ import annotations

import time
from typing import Any

import django_rq
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from redis.exceptions import RedisError

from console.models import Classification, ClassificationStatus


@login_not_required
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: answered without touching the database or Redis, so a restart is never triggered by them."""
    return JsonResponse({"status": "ok"})


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = check()
    except (DatabaseError, RedisError, OSError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **(detail or {})}


def _database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {}


def _redis() -> dict[str, Any]:
    django_rq.get_connection("default").ping()
    return {}


def _queues() -> dict[str, Any]:
    return {
        "reasoner_queued": Classification.objects.filter(status=ClassificationStatus.QUEUED).count(),
        "awaiting_review": Classification.objects.filter(queue__isnull=False).count(),
    }


@login_not_required
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: 200 when the database and Redis answer, 503 (with what failed) when either does not."""
    checks = {"database": _timed(_database), "redis": _timed(_redis)}
    ready = all(check["ok"] for check in checks.values())
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "checks": checks,
        "engine": settings.SAFEGUARD_BACKEND or None,
    }
    if checks["database"]["ok"]:
        body["queues"] = _timed(_queues)
    return JsonResponse(body, status=200 if ready else 503)
