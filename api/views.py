"""The REST API (JSON, token-authenticated): submit items one at a time or in batches, read their
state, list policies, and the OpenAPI schema. /v1/moderations lives in api.moderations."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from api import ingest, inputs, item_states, json_input, schema
from api.auth import api_view
from api.errors import ApiError, invalid
from api.limits import read_json
from api.models import ApiClient, Scope
from console.models import Item
from enforcement import shapes
from policies_app.models import Policy

BATCH_FIELDS = {"items", "policies"}


def _get_item_for_client(client: ApiClient, **lookup: Any) -> int:
    # A client sees only the items it submitted (its source); anything else is "not found".
    pk = Item.objects.filter(source=client.source, **lookup).values_list("pk", flat=True).first()
    if pk is None:
        raise ApiError(404, "No item with that id was submitted with this token", code="item_not_found")
    return pk


def wait_for(item_ids: list[int], seconds: float) -> None:
    """Block until none of the items has reasoner work queued or running, or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while seconds > 0 and item_states.unsettled(item_ids):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        time.sleep(min(settings.API_WAIT_POLL_S, remaining))


@api_view("GET", auth=False)
def openapi_schema(request: HttpRequest) -> JsonResponse:
    return JsonResponse(schema.build(request.build_absolute_uri("/")), json_dumps_params={"indent": 1})


@api_view("GET", scope=Scope.READ)
def policy_list(request: HttpRequest) -> JsonResponse:
    # Only the policies this client may classify under: the others are none of its business.
    client = request.api_client
    defaults = set(client.default_policies.values_list("pk", flat=True))
    rows = Policy.objects.with_version_summary().filter(pk__in=client.allowed_policies.values("pk")).order_by("slug")
    data = [
        {"slug": p.slug, "name": p.name, "description": p.description, "published_version": p.published_number,
         "default": p.pk in defaults}
        for p in rows
    ]
    return JsonResponse({"object": "list", "data": data})


@api_view("POST", scope=Scope.SUBMIT)
def item_create(request: HttpRequest) -> JsonResponse:
    """Submit one item: 201 with its state, or 200 with the stored item's state for a repeat."""
    client = request.api_client
    wait = inputs.parse_wait(request)
    body = read_json(request)
    data, versions = inputs.parse_item(body, "", client, inputs.PolicyResolver(client))
    [state] = ingest.ingest(client=client, submissions=[ingest.Submission(data, versions)])
    created = state["created"]
    if wait and state["status"] == item_states.PENDING:
        wait_for([state["id"]], wait)
        state = {**item_states.item_states([state["id"]])[state["id"]], "created": created}
    return JsonResponse(state, status=201 if created else 200)


@api_view("POST", scope=Scope.SUBMIT)
def item_batch(request: HttpRequest) -> JsonResponse:
    """Submit up to API_MAX_BATCH items at once, all or nothing."""
    client = request.api_client
    body = inputs.require_object(read_json(request), None)
    inputs.reject_unknown(body, BATCH_FIELDS, "")
    items = body.get("items")
    if not isinstance(items, list):
        raise invalid("must be an array of items", "items", "wrong_type" if "items" in body else "missing_field")
    if not items:
        raise invalid("send at least one item", "items")
    if len(items) > settings.API_MAX_BATCH:
        raise invalid(f"{len(items)} items; a batch holds at most {settings.API_MAX_BATCH}", "items",
                      "batch_too_large")
    resolver = inputs.PolicyResolver(client)
    batch_policies = body.get("policies")
    if batch_policies is not None:
        resolver.versions(batch_policies, "policies")  # refuse a bad batch-wide list before any item
    submissions = [
        ingest.Submission(*inputs.parse_item(obj, f"items[{i}]", client, resolver, batch_policies))
        for i, obj in enumerate(items)
    ]
    states = ingest.ingest(client=client, submissions=submissions)
    created = sum(state["created"] for state in states)
    return JsonResponse({"object": "list", "created": created, "existing": len(states) - created, "data": states},
                        status=201 if created else 200)


def _item_response(request: HttpRequest, pk: int) -> JsonResponse:
    wait = inputs.parse_wait(request)
    if wait:
        wait_for([pk], wait)
    return JsonResponse(item_states.item_states([pk])[pk])


@api_view("GET", scope=Scope.READ)
def item_detail(request: HttpRequest, item_id: int) -> JsonResponse:
    return _item_response(request, _get_item_for_client(request.api_client, pk=item_id))


@api_view("GET", scope=Scope.READ)
def item_by_external_id(request: HttpRequest, external_id: str) -> JsonResponse:
    json_input.check_text(external_id, "external_id")
    return _item_response(request, _get_item_for_client(request.api_client, external_id=external_id))



@api_view("GET", scope=Scope.READ)
def item_statements(request: HttpRequest, item_id: int) -> JsonResponse:
    """The item's enforcement actions and their statements of reasons (withdrawn ones say so)."""
    pk = _get_item_for_client(request.api_client, pk=item_id)
    data = [{"object": "action", "policy": action.policy_version.policy.slug, "version": action.policy_version.number,
             **shapes.action_shape(action), "statement": shapes.statement_shape(statement) if statement else None}
            for action, statement in shapes.for_items([pk])]
    return JsonResponse({"object": "list", "item_id": pk, "data": data})
