"""No Docker engine runs in CI, so compose.yaml is validated here rather than run."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from safeguard.engines.endpoints import split_urls

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


SERVICES = COMPOSE["services"]
CONSOLE_SERVICES = ("migrate", "web", "worker", "reasoner")


def _default(value: str) -> str:
    """The default of a `${NAME:-default}` value (or the value itself when it is literal)."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return match.group(1) if match else value


def _one_shot(name: str) -> bool:
    """A job the others wait to *finish*, like migrate: it never becomes healthy, so it needs no check."""
    waits = [rules[name]["condition"] for rules in (s.get("depends_on") or {} for s in SERVICES.values())
             if name in rules]
    return SERVICES[name].get("restart") == "no" and bool(waits) and set(waits) == {"service_completed_successfully"}


def test_every_long_running_service_has_a_healthcheck():
    for name, service in SERVICES.items():
        if _one_shot(name):
            assert "healthcheck" not in service, name
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert check.get("interval") and check.get("retries"), name


def test_every_dependency_on_a_service_with_a_healthcheck_waits_until_it_is_healthy():
    for name, service in SERVICES.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            if "healthcheck" in SERVICES[dependency]:
                assert rule["condition"] == "service_healthy", f"{name} -> {dependency}"


def test_the_healthchecks_probe_what_each_service_is():
    def probe(name: str) -> str:
        return " ".join(SERVICES[name]["healthcheck"]["test"][1:])

    assert "pg_isready" in probe("postgres")
    assert probe("redis") == "redis-cli ping"
    assert "127.0.0.1:8000/healthz" in probe("web")
    assert "rq.Worker.all" in probe("worker")
    assert "safeguard_worker" in probe("reasoner")
    assert "127.0.0.1:8000/health'" in probe("vllm")
    # The console image is python:3.12-slim, which has no curl: its probes use Python.
    for name in CONSOLE_SERVICES[1:]:
        assert SERVICES[name]["healthcheck"]["test"][1] == "python", name


def test_plain_compose_up_needs_no_gpu():
    gated = {name for name, service in SERVICES.items() if service.get("profiles")}
    assert gated == {"vllm", "reasoner"}
    for name, service in SERVICES.items():
        if service.get("profiles"):
            continue
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency not in gated or rule.get("required") is False, f"{name} -> {dependency}"


def test_the_vllm_service_is_in_the_gpu_profile_and_reserves_a_gpu():
    vllm = SERVICES["vllm"]
    assert vllm["profiles"] == ["gpu"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    assert vllm["entrypoint"] == ["vllm", "serve"]
    assert _default(vllm["command"][0]) == "openai/gpt-oss-safeguard-20b"
    assert "--port=8000" in vllm["command"]
    [device] = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert device.get("count") or device.get("device_ids")
    assert any(volume.endswith(":/root/.cache/huggingface") for volume in vllm["volumes"])
    assert vllm["volumes"][0].split(":")[0] in COMPOSE["volumes"]
    # A model load takes minutes (the first one downloads the weights): failures meanwhile must not count.
    start_period = vllm["healthcheck"]["start_period"]
    assert start_period.endswith("m") and int(start_period[:-1]) >= 10


def test_the_reasoner_talks_to_the_vllm_service_and_waits_for_it():
    reasoner = SERVICES["reasoner"]
    env = reasoner["environment"]
    assert "gpu" in reasoner["profiles"]
    assert _default(env["SAFEGUARD_BACKEND"]) == "openai"
    urls = split_urls(_default(env["SAFEGUARD_BASE_URL"]))
    assert [urlsplit(url).hostname for url in urls] == ["vllm"]
    assert [(urlsplit(url).port, urlsplit(url).path) for url in urls] == [(8000, "/v1")]
    assert _default(env["SAFEGUARD_MODEL"]) == _default(SERVICES["vllm"]["command"][0])
    assert reasoner["depends_on"]["vllm"]["condition"] == "service_healthy"
    # Under the `remote` profile there is no vllm service; the servers come from SAFEGUARD_BASE_URL.
    assert "remote" in reasoner["profiles"]
    assert reasoner["depends_on"]["vllm"]["required"] is False


def test_the_workers_and_web_can_be_scaled():
    assert SERVICES["reasoner"]["deploy"]["replicas"] >= 1
    for name in ("web", "worker", "reasoner"):
        # A fixed container name makes `--scale` fail; so would a second host port for web.
        assert "container_name" not in SERVICES[name], name
    for name in ("worker", "reasoner"):
        assert "ports" not in SERVICES[name], name


def test_database_connections_are_closed_after_each_request_under_asgi():
    for name in CONSOLE_SERVICES:
        assert SERVICES[name]["environment"]["DB_CONN_MAX_AGE"] == "0", name


def test_migrate_alone_connects_as_the_owner_and_the_console_as_the_application_role():
    postgres = SERVICES["postgres"]
    owner = urlsplit(SERVICES["migrate"]["environment"]["DATABASE_OWNER_URL"])
    assert owner.username == postgres["environment"]["POSTGRES_USER"]
    assert owner.path == "/" + postgres["environment"]["POSTGRES_DB"]
    apps = {urlsplit(SERVICES[name]["environment"]["DATABASE_URL"]) for name in CONSOLE_SERVICES}
    [app] = apps
    assert app.username != owner.username and (app.hostname, app.path) == (owner.hostname, owner.path)
    for name in CONSOLE_SERVICES[1:]:
        assert "DATABASE_OWNER_URL" not in SERVICES[name]["environment"], name
    # The role exists before anything connects: the postgres image runs /docker-entrypoint-initdb.d/*.sql
    # when it initialises its volume.
    [init] = postgres["configs"]
    assert init["target"].startswith("/docker-entrypoint-initdb.d/") and init["target"].endswith(".sql")
    created = COMPOSE["configs"][init["source"]]["content"]
    assert f"CREATE ROLE {app.username} LOGIN PASSWORD '{app.password}'" in created
