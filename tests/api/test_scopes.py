"""Token scopes: every API view needs exactly one scope (api_view(scope=...)), the schema says which,
and each endpoint family refuses a token without it with a JSON 403 naming it."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, reverse

from api import clients, schema
from api import urls as api_urls
from api.auth import api_view
from api.models import ApiClient, Scope
from console.models import Item

PUBLIC = {"schema"}  # the only API views without a token (and so without a scope)

# Each API endpoint, how to call it, and the scope it needs. A new endpoint must be added here, or
# test_every_api_endpoint_has_a_scope_enforcement_case fails.
ENDPOINTS = {
    "items": ("post", "/api/v1/items", {"external_id": "s-1", "content": "hi"}, Scope.SUBMIT),
    "items-batch": ("post", "/api/v1/items/batch", {"items": [{"external_id": "s-2", "content": "hi"}]},
                    Scope.SUBMIT),
    "item": ("get", "/api/v1/items/{item_id}", None, Scope.READ),
    "item-by-external-id": ("get", "/api/v1/items/by-external-id/known", None, Scope.READ),
    "item-statements": ("get", "/api/v1/items/{item_id}/statements", None, Scope.READ),
    "item-appeals": ("get", "/api/v1/items/{item_id}/appeals", None, Scope.APPEALS),
    "policies": ("get", "/api/v1/policies", None, Scope.READ),
    "moderations": ("post", "/v1/moderations", {"input": "hi"}, Scope.MODERATIONS),
    "erasures": ("post", "/api/v1/erasures", {"external_id": "known"}, Scope.ERASE),
}


def _api_patterns() -> list[URLPattern]:
    """The API's URL patterns: everything under api/ and v1/ (the rest are the admins' pages)."""
    return [p for p in api_urls.urlpatterns if str(p.pattern).startswith(("api/", "v1/"))]


def test_every_api_view_names_exactly_one_scope_or_is_public():
    patterns = _api_patterns()
    assert patterns, "the walk found no API views"
    for pattern in patterns:
        view = pattern.callback
        assert hasattr(view, "api_auth"), f"{pattern.name} is not wrapped by api.auth.api_view"
        if pattern.name in PUBLIC:
            assert (view.api_auth, view.api_scope) == (False, None), pattern.name
        else:
            assert view.api_auth is True, f"{pattern.name} skips token auth but is not listed as public"
            assert view.api_scope in Scope.values, f"{pattern.name} needs no scope"


def test_no_console_page_is_an_api_view():
    pages = [p for p in api_urls.urlpatterns if p not in _api_patterns()]
    assert pages
    assert [p.name for p in pages if hasattr(p.callback, "api_auth")] == []


def test_an_authenticated_api_view_cannot_be_declared_without_a_scope():
    with pytest.raises(ValueError, match="needs one scope"):
        api_view("GET")
    with pytest.raises(ValueError, match="needs one scope"):
        api_view("GET", scope="everything")
    with pytest.raises(ValueError, match="takes no scope"):
        api_view("GET", scope=Scope.READ, auth=False)


def test_every_api_endpoint_has_a_scope_enforcement_case():
    assert set(ENDPOINTS) == {p.name for p in _api_patterns()} - PUBLIC
    for pattern in _api_patterns():
        if pattern.name in ENDPOINTS:
            assert pattern.callback.api_scope == ENDPOINTS[pattern.name][3], pattern.name


def test_the_schema_names_the_scope_each_operation_needs():
    paths = schema.build("http://testserver/")["paths"]
    for name, (method, url, _, scope) in ENDPOINTS.items():
        url = url.format(item_id=1)
        # The literal path if there is one (items/batch), else the one template that matches (items/{id}).
        [path] = [url] if url in paths else [p for p in paths if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", p), url)]
        assert paths[path][method]["security"] == [{"bearer": [scope]}], name


def _set_scopes(client: ApiClient, scopes: list[str]) -> None:
    client = ApiClient.objects.get(pk=client.pk)
    clients.update_client(actor=None, client=client, scopes=scopes,
                          default_policies=list(client.default_policies.all()), webhook_url=client.webhook_url,
                          rate_limit_per_minute=client.rate_limit_per_minute)


@pytest.fixture
def known_item(api, spam) -> int:
    """An item acme submitted (external id "known"), for the read endpoints."""
    return api.post("/api/v1/items", {"external_id": "known", "content": "hello"}).json()["id"]


def _call(api, name: str, item_id: int):
    method, url, body, _ = ENDPOINTS[name]
    url = url.format(item_id=item_id)
    return api.post(url, body) if method == "post" else api.get(url)


@pytest.mark.parametrize("name", ENDPOINTS)
def test_each_endpoint_refuses_a_token_without_its_scope_with_403_naming_it(api, acme, known_item, name,
                                                                            settings):
    settings.API_MODERATION_WAIT_S = 0
    needed = ENDPOINTS[name][3]
    _set_scopes(acme[0], [s for s in Scope.values if s != needed])
    items = Item.objects.count()
    response = _call(api, name, known_item)
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("insufficient_scope", "permission_error")
    assert f"'{needed}' scope" in error["message"]
    assert f'scope="{needed}"' in response["WWW-Authenticate"]
    assert Item.objects.count() == items


@pytest.mark.parametrize("name", ENDPOINTS)
def test_each_endpoint_serves_a_token_holding_only_its_scope(api, acme, known_item, name, settings):
    settings.API_MODERATION_WAIT_S = 0
    _set_scopes(acme[0], [ENDPOINTS[name][3]])
    response = _call(api, name, known_item)
    assert response.status_code in (200, 201), response.json()


def test_a_read_only_token_reads_items_but_submits_nothing(api, acme, known_item):
    _set_scopes(acme[0], [Scope.READ])
    assert api.get(f"/api/v1/items/{known_item}").json()["external_id"] == "known"
    assert api.post("/api/v1/items", {"content": "more"}).status_code == 403
    assert api.post("/v1/moderations", {"input": "more"}).status_code == 403
    assert Item.objects.count() == 1


def test_the_url_names_match_the_paths_called(known_item):
    # The table's URLs are the ones the names resolve to, so the walk and the calls agree.
    assert reverse("api:item", args=[known_item]) == ENDPOINTS["item"][1].format(item_id=known_item)
    assert reverse("api:items-batch") == ENDPOINTS["items-batch"][1]
    assert reverse("api:moderations") == ENDPOINTS["moderations"][1]
