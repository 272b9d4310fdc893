"""The API's side of erasure: `POST /api/v1/erasures`, where a client asks for the text of one of its
own items to be erased (by item id or by its external id), and the redaction of the copies the API
keeps (webhook payloads and receivers' answers), registered with `privacy.erasure` in ApiConfig.ready."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from api import inputs, item_states, json_input
from api.auth import api_view
from api.errors import ApiError, invalid
from api.limits import read_json
from api.models import Scope, WebhookDelivery
from console.models import Item
from privacy import erasure
from privacy.models import Erasure
from privacy.redaction import redact_json

FIELDS = {"item_id", "external_id"}


def redact_deliveries(item: Item, erased: set[str], text: str) -> erasure.Copies:
    copies = erasure.Copies()
    deliveries = list(WebhookDelivery.objects.select_for_update().filter(item=item))
    for delivery in deliveries:
        delivery.payload = redact_json(delivery.payload, erased, text)
        delivery.response_excerpt = redact_json(delivery.response_excerpt, erased, text)
        delivery.save(update_fields=["payload", "response_excerpt"])
    copies.counts["api.webhookdelivery.payload"] = len(deliveries)
    copies.audited["api.webhookdelivery"] += [d.pk for d in deliveries]
    return copies


def _item_of(client: Any, body: dict[str, Any]) -> int:
    """The id of the client's own item the body names; 400 naming the field, or 404."""
    inputs.reject_unknown(body, FIELDS, "")
    item_id, external_id = body.get("item_id"), body.get("external_id")
    if item_id is None and external_id is None:
        raise invalid("name the item by item_id or by external_id", "item_id", "missing_field")
    if item_id is not None and external_id is not None:
        raise invalid("give item_id or external_id, not both", "external_id")
    if item_id is not None:
        if isinstance(item_id, bool) or not isinstance(item_id, int) or item_id < 1:
            raise invalid("must be a positive integer", "item_id", "wrong_type")
        lookup: dict[str, Any] = {"pk": item_id}
    else:
        if not isinstance(external_id, str) or not external_id.strip():
            raise invalid("must be a non-empty string", "external_id", "wrong_type")
        if len(external_id) > 200:
            raise invalid("is at most 200 characters", "external_id")
        json_input.check_text(external_id, "external_id")
        lookup = {"external_id": external_id}
    # Only the client's own items (its source); any other is "not found", as for reads.
    pk = Item.objects.filter(source=client.source, **lookup).values_list("pk", flat=True).first()
    if pk is None:
        raise ApiError(404, "No item with that id was submitted with this token", code="item_not_found",
                       param="item_id" if item_id is not None else "external_id")
    return pk


def erasure_shape(record: Erasure) -> dict[str, Any]:
    return {"object": "erasure", "id": record.pk, "item_id": record.item_pk, "external_id": record.external_id,
            "created_at": item_states.iso(record.created_at), "requested_via": record.requested_via,
            "redacted": record.counts}


@api_view("POST", scope=Scope.ERASE)
def erasure_create(request: HttpRequest) -> JsonResponse:
    """Erase one of the client's items: 201 with the erasure, or 200 with the earlier one for a repeat."""
    client = request.api_client
    pk = _item_of(client, inputs.require_object(read_json(request), None))
    try:
        record, created = erasure.erase_item(item_id=pk, actor=None, actor_name=f"api:{client.name}")
    except erasure.ErasureError:  # deleted since it was looked up
        raise ApiError(404, "No item with that id was submitted with this token", code="item_not_found") from None
    return JsonResponse(erasure_shape(record), status=201 if created else 200)
