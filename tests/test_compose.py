"""No Docker engine runs in CI, so compose.yaml is validated here rather than run."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
COMMANDS = {p.stem for p in ROOT.glob("*/management/commands/*.py")}  # every app's commands


def test_every_dependency_names_a_service_and_a_valid_condition():
    services = COMPOSE["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert rule["condition"] in {"service_started", "service_healthy", "service_completed_successfully"}
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


def test_the_database_and_redis_are_healthy_before_anything_starts():
    migrate = COMPOSE["services"]["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in ("web", "worker", "reasoner"):
        assert COMPOSE["services"][name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_service_gets_the_settings_the_console_requires():
    for name in ("migrate", "web", "worker", "reasoner"):
        env = COMPOSE["services"][name]["environment"]
        for key in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
            assert env.get(key), f"{name} lacks {key}"


def test_the_management_commands_compose_runs_exist():
    for name in ("worker", "reasoner", "migrate"):
        command = COMPOSE["services"][name]["command"]
        if command[:2] == ["python", "manage.py"]:
            assert command[2] in COMMANDS | {"migrate", "rqworker"}, command
    assert (ROOT / "Dockerfile").exists()
