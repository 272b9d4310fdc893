"""Every bad request is a JSON 4xx naming the field, and changes nothing; an unexpected failure is a JSON
500 with a request id, never HTML; a Redis outage does not take the API down with it."""

from __future__ import annotations

import json
import logging
import os
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.exceptions import ConnectionError as RedisConnectionError

from api import redis_client
from console.models import Item

ITEMS, BATCH, MODERATIONS = "/api/v1/items", "/api/v1/items/batch", "/v1/moderations"

pytestmark = pytest.mark.django_db


def _error(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()["error"]


@pytest.mark.parametrize(
    ("raw", "param", "code"),
    [
        ('{"content": "a\\u0000b"}', "content", "invalid_character"),
        ('{"content": "hi", "policies": ["sp\\u0000am"]}', "policies[0]", "invalid_character"),
        ('{"content": "hi", "metadata": {"n": 1e999}}', "metadata.n", "invalid_number"),
        ('{"content": "hi", "metadata": {"tags": ["ok", "\\ud800"]}}', "metadata.tags[1]", "invalid_character"),
        ('{"content": "\\udfff lone"}', "content", "invalid_character"),
        ('{"external_id": "x\\ud83d", "content": "hi"}', "external_id", "invalid_character"),
        ('{"content": "hi", "turns": [{"role": "user", "content": "\\u0000"}]}', "turns[0].content",
         "invalid_character"),
        ('{"content": "hi", "metadata": {"k\\u0000": 1}}', "metadata", "invalid_character"),
    ],
)
def test_it_refuses_what_cannot_be_stored_naming_the_field(api, spam, raw, param, code):
    before = Item.objects.count()

    response = api.post(ITEMS, None, raw=raw.encode())

    error = _error(response)
    assert (response.status_code, error["param"], error["code"]) == (400, param, code)
    assert Item.objects.count() == before


def test_it_refuses_deep_nesting_at_any_depth_without_a_traceback(api, spam, caplog):
    moderate = '{"content": "hi", "metadata": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"
    absurd = '{"content": "hi", "metadata": ' + "[" * 50_000 + "]" * 50_000 + "}"

    with caplog.at_level(logging.ERROR):
        responses = [api.post(ITEMS, None, raw=body.encode()) for body in (moderate, absurd)]

    assert [r.status_code for r in responses] == [400, 400]
    assert [_error(r)["code"] for r in responses] == ["too_deep", "too_deep"]
    assert _error(responses[0])["param"].startswith("metadata.a.a")
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_a_batch_with_a_bad_character_in_one_item_names_that_item_and_stores_none(api, spam):
    body = {"items": [{"content": "fine"}, {"content": "also fine"}, {"content": "bad \x00"}]}

    response = api.post(BATCH, body)

    assert (response.status_code, _error(response)["param"]) == (400, "items[2].content")
    assert Item.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [({"input": "hello\x00"}, "input"), ({"input": ["ok", "\ud800"]}, "input[1]"),
     ({"input": "hi", "model": "spam\x00"}, "model")],
)
def test_the_moderations_endpoint_refuses_them_too(api, spam, body, param):
    response = api.post(MODERATIONS, None, raw=json.dumps(body).encode())

    assert (response.status_code, _error(response)["param"]) == (400, param)


@pytest.mark.parametrize("segment", ["ab%00cd", "x%ED%A0%80y"])
def test_a_bad_character_in_the_path_is_a_json_400_or_404(api, spam, segment):
    response = api.client.get(f"{ITEMS}/by-external-id/{segment}", headers=api._headers(None))

    assert response.status_code in (400, 404)
    assert _error(response)


def test_an_unexpected_failure_is_a_json_500_with_a_request_id_logged_once(api, spam, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr("api.ingest.ingest", broken)
    with caplog.at_level(logging.ERROR):
        response = api.post(ITEMS, {"content": "hello"})

    error = _error(response)
    assert (response.status_code, error["type"], error["code"]) == (500, "api_error", "internal_error")
    request_id = response["X-Request-Id"]
    assert request_id in error["message"]
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1 and request_id in logged[0].getMessage()


def _without_redis(monkeypatch, call):
    """`call()` while every Redis connection is refused (undone before the fixtures clean Redis up)."""

    def refuse():
        raise RedisConnectionError("Connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(redis_client, "connection", refuse)
        return call()


def test_without_redis_requests_go_through_uncounted_by_default(api, spam, monkeypatch):
    response = _without_redis(monkeypatch, lambda: api.get("/api/v1/policies"))

    assert response.status_code == 200
    assert "X-RateLimit-Remaining" not in response


def test_without_redis_a_closed_rate_limit_answers_a_json_503(api, spam, monkeypatch, settings):
    settings.API_RATE_LIMIT_WITHOUT_REDIS = "closed"

    response = _without_redis(monkeypatch, lambda: api.get("/api/v1/policies"))

    assert (response.status_code, _error(response)["code"], response["Retry-After"]) == (
        503, "rate_limit_unavailable", "5")


# --- fuzzing: random bodies and paths, never a 5xx ---------------------------------------------------

_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=30)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=12,
)
_KEYS = st.sampled_from(["content", "external_id", "kind", "turns", "metadata", "policies", "items", "input",
                         "model", "source", "role"])
_BODIES = st.one_of(
    _JSON,
    st.dictionaries(_KEYS, _JSON, max_size=5),
    st.builds(lambda items: {"items": items}, st.lists(st.dictionaries(_KEYS, _JSON, max_size=4), max_size=3)),
)
# Bounded for CI; FUZZ_EXAMPLES=1500 python3 dev.py test tests/api/test_bad_input.py -k fuzz digs deeper.
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")), deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _encoded(body) -> bytes:
    # json.dumps writes lone surrogates and non-finite floats as the escapes a hostile client would send.
    return json.dumps(body).encode()


@FUZZ
@given(url=st.sampled_from([ITEMS, BATCH, MODERATIONS]), body=_BODIES)
def test_fuzzed_bodies_never_get_a_server_error(api, spam, url, body):
    response = api.post(url, None, raw=_encoded(body))

    assert response.status_code < 500, response.content[:300]
    assert response["Content-Type"].startswith("application/json")


@FUZZ
@given(segment=st.text(max_size=40), wait=st.text(max_size=8))
def test_fuzzed_paths_and_query_values_never_get_a_server_error(api, spam, segment, wait):
    response = api.client.get(f"{ITEMS}/by-external-id/{quote(segment, safe='')}", {"wait": wait},
                              headers=api._headers(None))

    assert response.status_code < 500, response.content[:300]
