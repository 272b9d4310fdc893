"""The REST API (JSON, token-authenticated): submit items one at a time or in batches, read their
state, list policies, file and read appeals (DSA Art. 20; their outcome is told by webhook, event
appeal.decided), and the OpenAPI schema. /v1/moderations lives in api.moderations."""

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
from enforcement import appeals, shapes
from enforcement.models import Appeal, Complainant
from policies_app.models import Policy

BATCH_FIELDS = {"items", "policies"}
APPEAL_FIELDS = {"external_id", "reason", "complainant", "policy"}


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




def _text(body: dict[str, Any], name: str, *, required: bool) -> str:
    value = body.get(name)
    if value is None:
        if required:
            raise invalid("is required", name, "missing_field")
        return ""
    if not isinstance(value, str):
        raise invalid("must be a string", name, "wrong_type")
    if required and not value.strip():
        raise invalid("may not be empty", name)
    return value


def _file_appeal(request: HttpRequest, item_id: int) -> JsonResponse:
    client = request.api_client
    body = inputs.require_object(read_json(request), None)
    inputs.reject_unknown(body, APPEAL_FIELDS, "")
    external_id = _text(body, "external_id", required=True)
    reason = _text(body, "reason", required=True)
    complainant = _text(body, "complainant", required=False) or Complainant.AFFECTED
    policy = _text(body, "policy", required=False)
    try:
        appeal, created = appeals.file_appeal(item_id=item_id, external_id=external_id, reason=reason,
                                              complainant=complainant, policy=policy,
                                              filed_via=f"api:{client.name}")
    except appeals.AppealConflict as exc:
        raise ApiError(409, str(exc), param=exc.field or None, code="appeal_conflict") from None
    except appeals.AppealError as exc:
        raise invalid(str(exc), exc.field or None) from None
    return JsonResponse(shapes.appeal_shape(appeal), status=201 if created else 200)


@api_view("GET", "POST", scope=Scope.APPEALS)
def item_appeals(request: HttpRequest, item_id: int) -> JsonResponse:
    """POST: file an appeal (201; 200 with the stored one for a repeat; 409 for a conflicting reuse of
    external_id or an appeal already open on the decision). GET: the item's appeals, oldest first."""
    pk = _get_item_for_client(request.api_client, pk=item_id)
    if request.method == "POST":
        return _file_appeal(request, pk)
    rows = Appeal.objects.filter(item_id=pk).select_related("action__policy_version__policy").order_by(
        "received_at", "id")
    return JsonResponse({"object": "list", "item_id": pk, "data": [shapes.appeal_shape(a) for a in rows]})
