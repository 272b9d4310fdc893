"""POST /v1/moderations, shaped like OpenAI's moderation endpoint, so a platform using the openai SDK
switches by changing its base URL (and API key to a console token).

Each input is stored as an item of the calling client and routed through the first pass and the
reasoner under one policy when `model` names one (its slug or name), else under the configured policies
(API_MODERATION_POLICIES, else the client's default set). Any other `model` (the SDK's
"omni-moderation-latest") is only echoed. Every policy must be among the client's allowed policies (a
403 names the one that is not). The call waits up to API_MODERATION_WAIT_S for the reasoner, then
answers per input:

* categories / category_scores: one entry per policy slug (not OpenAI's category names);
* a policy not yet cleared (the reasoner is still working, or people must look) counts as flagged:
  content is held until it is cleared, never passed silently. `status` says which ("decided",
  "pending", "in_review") and `item_id` lets the platform follow the item (GET /api/v1/items/<id>)
  or receive its decision by webhook.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from api import ingest, inputs, item_states
from api.auth import api_view
from api.errors import ApiError, invalid
from api.limits import read_json
from api.models import Scope
from api.views import wait_for
from console.intake import SubmitError, clean_item_input
from policies_app.models import PolicyVersion

MODERATION_FIELDS = {"input", "model"}
DEFAULT_MODEL = "moderation-console"


def _texts(value: Any) -> list[str]:
    """The `input` field as a list of texts: a string, a list of strings, or OpenAI's list of
    {"type": "text", "text": ...} parts."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise invalid("must be a string or an array of strings", "input", "wrong_type")
    if not value:
        raise invalid("send at least one input", "input")
    if len(value) > settings.API_MAX_BATCH:
        raise invalid(f"{len(value)} inputs; one call takes at most {settings.API_MAX_BATCH}", "input",
                      "batch_too_large")
    texts = []
    for i, part in enumerate(value):
        if isinstance(part, dict):
            inputs.reject_unknown(part, {"type", "text", "image_url"}, f"input[{i}]")
            if part.get("type") != "text":
                raise invalid("only text inputs are supported", f"input[{i}].type", "unsupported_input")
            part = part.get("text")
            if not isinstance(part, str):
                raise invalid("must be a string", f"input[{i}].text", "wrong_type")
        elif not isinstance(part, str):
            raise invalid("must be a string", f"input[{i}]", "wrong_type")
        texts.append(part)
    return texts


def _score(policy: dict[str, Any]) -> float:
    """Probability-like score of a violation for one policy's state."""
    if policy["decided_by"] == "moderator":
        return 1.0 if policy["flagged"] else 0.0
    if policy["decided_by"] == "reasoner":
        verdict = next((v for v in policy["verdicts"] if v["stage"] == "reasoner"), {})
        confidence = verdict.get("confidence")
        if confidence is None:
            return 1.0 if policy["flagged"] else 0.0
        return confidence if policy["flagged"] else 1.0 - confidence
    return policy["score"] if policy["score"] is not None else (0.0 if policy["flagged"] is False else 1.0)


def result(state: dict[str, Any]) -> dict[str, Any]:
    """One entry of `results` for an item's state."""
    categories, scores, applied = {}, {}, {}
    for policy in state["policies"]:
        slug = policy["policy"]
        categories[slug] = bool(policy["flagged"]) if policy["status"] == item_states.DECIDED else True
        scores[slug] = round(_score(policy), 6)
        applied[slug] = ["text"]
    return {
        "flagged": any(categories.values()),
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": applied,
        "item_id": state["id"],
        "status": state["status"],
    }


def _configured_versions(resolver: inputs.PolicyResolver) -> list[PolicyVersion]:
    """API_MODERATION_POLICIES (else the client's defaults) as versions. A configured policy that is
    missing or unpublished is the operator's mistake (503); one the client may not use is its own (403)."""
    configured = settings.API_MODERATION_POLICIES or None
    try:
        return resolver.versions(configured, "policies")
    except ApiError as exc:
        if configured is None or exc.code == "policy_not_allowed":
            raise
        raise ApiError(503, f"The moderation endpoint is misconfigured: {exc.message}",
                       code="moderation_not_configured") from None


@api_view("POST", scope=Scope.MODERATIONS)
def create_moderation(request: HttpRequest) -> JsonResponse:
    client = request.api_client
    body = inputs.require_object(read_json(request), None)
    inputs.reject_unknown(body, MODERATION_FIELDS, "")
    if "input" not in body:
        raise invalid("is required", "input", "missing_field")
    texts = _texts(body["input"])
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid("must be a string", "model", "wrong_type")
    resolver = inputs.PolicyResolver(client)
    if model is not None and model.strip() and resolver.find(model) is not None:
        versions = [resolver.version(model, "model")]
    else:
        versions = _configured_versions(resolver)
    submissions = []
    for i, text in enumerate(texts):
        if len(text) > settings.API_MAX_CONTENT_CHARS:
            raise invalid(f"{len(text)} characters; the limit is {settings.API_MAX_CONTENT_CHARS}", f"input[{i}]",
                          "too_long")
        try:
            data = clean_item_input(kind="message", source=client.source, content=text,
                                    metadata={"via": "v1/moderations", "model": model or DEFAULT_MODEL})
        except SubmitError as exc:
            raise invalid(str(exc), f"input[{i}]") from None
        submissions.append(ingest.Submission(data, versions))
    states = ingest.ingest(client=client, submissions=submissions)
    ids = [state["id"] for state in states]
    if any(state["status"] == item_states.PENDING for state in states):
        wait_for(ids, settings.API_MODERATION_WAIT_S)
        current = item_states.item_states(ids)
        states = [current[pk] for pk in ids]
    return JsonResponse({
        "id": f"modr-{uuid.uuid4().hex}",
        "model": model or DEFAULT_MODEL,
        "results": [result(state) for state in states],
    })
