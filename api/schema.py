"""The OpenAPI 3.1 description of the API, built in code and served at /api/v1/schema.json.

Each operation's `security` names the one scope its token needs (OpenAPI 3.1 lets a bearer scheme list
required roles there); `tests/api/test_scopes.py` checks these against the views' `api_view(scope=...)`."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _scope(scope: str) -> dict[str, Any]:
    """An operation's security requirement: a bearer token holding `scope`."""
    return {"security": [{"bearer": [scope]}]}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid input: `error.param` names the field (e.g. `items[3].content`); nothing was stored",
        401: "Missing, invalid, revoked or expired token (`error.code` token_expired, with when it expired)",
        403: "The token lacks this operation's scope (`error.code` insufficient_scope, naming it), or a policy "
             "named is not among the client's allowed policies (policy_not_allowed, named in `error.param`); "
             "nothing was stored",
        404: "Unknown policy (named in `error.param`) or item",
        409: "A policy has no published version",
        413: "The body is larger than the limit",
        415: "The body is not application/json",
        429: "The token's rate limit is spent; see Retry-After",
    }
    return {str(code): _json(_ref("Error"), text[code]) for code in codes}


WAIT = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "Seconds to wait for the reasoner's verdicts before answering (holds a server thread).",
    "schema": {"type": "number", "minimum": 0},
}


def build(base_url: str) -> dict[str, Any]:
    """The schema, with `base_url` (the site root) as its server."""
    max_batch = settings.API_MAX_BATCH
    item_input = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "kind": {"type": "string", "enum": ["message", "completion", "conversation"], "default": "message"},
            "external_id": {
                "type": "string", "maxLength": 200,
                "description": "Your id for the item. Submitting the same id again returns the stored item "
                               "(idempotent) and stores nothing.",
            },
            "content": {"type": "string", "description": "The text, for a message or completion"},
            "turns": {
                "type": "array",
                "items": {"type": "object", "additionalProperties": False, "required": ["role", "content"],
                          "properties": {"role": {"type": "string"}, "content": {"type": "string"}}},
                "description": "A conversation's turns (kind=conversation)",
            },
            "metadata": {"type": "object", "description": "Kept with the item, returned as is"},
            "source": {"type": "string", "description": "Optional; must be the token's own source"},
            "policies": {
                "type": "array", "items": {"type": "string"}, "minItems": 1,
                "description": "Policy slugs or names; left out: the batch's list, else the client's defaults",
            },
        },
    }
    verdict = {
        "type": "object",
        "properties": {
            "stage": {"type": "string", "enum": ["fast", "reasoner"]},
            "status": {"type": "string",
                       "enum": ["queued", "running", "done", "failed", "unparsable", "conflicting", "truncated",
                                "too_long"],
                       "description": "Only done carries a verdict; every other finished status goes to a person"},
            "label": {"type": "string"},
            "violation": {"type": ["boolean", "null"]},
            "category": {"type": "string"},
            "rule_ids": {"type": "array", "items": {"type": "string"}},
            "confidence": {"type": ["number", "null"],
                           "description": "For the fast stage: the first pass's probability of a violation"},
            "rationale": {"type": "string"},
            "parse_quality": {"type": ["string", "null"],
                              "enum": ["clean", "recovered", "conflicting", "truncated", "unparsable", None],
                              "description": "How the reasoner's answer was read; null when there was none to read"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
        },
    }
    policy_state = {
        "type": "object",
        "properties": {
            "policy": {"type": "string", "description": "Policy slug"},
            "version": {"type": "integer"},
            "route": {"type": ["string", "null"], "enum": ["closed", "qc_sample", "reasoner", "human", None],
                      "description": "Where the first pass sent the item; qc_sample is closed and also shown "
                                     "to people as a quality check"},
            "score": {"type": ["number", "null"], "description": "The first pass's score; null: no model yet"},
            "status": {"type": "string", "enum": ["pending", "in_review", "decided"]},
            "flagged": {"type": ["boolean", "null"]},
            "decided_by": {"type": ["string", "null"], "enum": ["first_pass", "reasoner", "moderator", None]},
            "decided_at": {"type": ["string", "null"], "format": "date-time"},
            "verdicts": {"type": "array", "items": _ref("Verdict")},
            "review": {"type": ["object", "null"]},
        },
    }
    item_state = {
        "type": "object",
        "properties": {
            "object": {"const": "item"},
            "id": {"type": "integer"},
            "source": {"type": "string"},
            "external_id": {"type": "string"},
            "kind": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": ["pending", "in_review", "decided"],
                       "description": "pending: the reasoner is working; in_review: people must look; "
                                      "decided: every policy has a final decision"},
            "decision": {
                "type": ["object", "null"],
                "properties": {"flagged": {"type": "boolean"},
                               "flagged_policies": {"type": "array", "items": {"type": "string"}},
                               "decided_at": {"type": "string", "format": "date-time"}},
            },
            "policies": {"type": "array", "items": _ref("PolicyState")},
            "created": {"type": "boolean", "description": "In answers to submissions: false for a repeat"},
        },
    }
    action = {
        "type": "object",
        "description": "What was done about a moderator's decision under one policy",
        "properties": {
            "type": {"type": "string", "enum": ["none", "label", "reduce_visibility", "remove", "age_gate",
                                                "suspend_account"]},
            "duration_days": {"type": ["integer", "null"], "description": "null: indefinite (or no action)"},
            "decided_code": {"type": "string", "description": "The decided category or label"},
            "violation": {"type": "boolean"},
            "decided_at": {"type": "string", "format": "date-time"},
        },
    }
    statement = {
        "type": "object",
        "description": "The statement of reasons for a restricting action (DSA Art. 17)",
        "properties": {
            "object": {"const": "statement"},
            "puid": {"type": "string", "format": "uuid", "description": "Unique platform id, never reused"},
            "policy": {"type": "string"}, "version": {"type": "integer"},
            "withdrawn": {"type": "boolean", "description": "The action was changed to none afterwards"},
            "restriction": {"type": "object", "properties": {
                "type": {"type": "string"}, "scope": {"type": "string", "enum": ["content", "account"]},
                "duration_days": {"type": ["integer", "null"]},
                "end_date": {"type": ["string", "null"], "format": "date"}}},
            "facts": {"type": "string"},
            "ground": {"type": "object", "properties": {
                "type": {"type": "string", "enum": ["incompatible_content", "illegal_content"]},
                "policy_name": {"type": "string"}, "policy_version": {"type": "integer"},
                "rule_ids": {"type": "array", "items": {"type": "string"}}, "text": {"type": "string"},
                "legal_ground": {"type": ["string", "null"]}}},
            "automated_detection": {"type": "boolean"},
            "automated_decision": {"type": "string", "enum": ["fully", "partially", "not_automated"]},
            "source_type": {"type": "string",
                            "enum": ["voluntary", "article_16", "trusted_flagger", "other_notification"],
                            "description": "From the item's metadata.source_type (notice, trusted_flagger, ...); "
                                           "voluntary (own initiative) otherwise"},
            "application_date": {"type": "string", "format": "date"},
            "content_date": {"type": "string", "format": "date"},
            "redress": {"type": "string"},
            "transparency_database": {"type": "object",
                                      "description": "The statement in the EU DSA Transparency Database's "
                                                     "submission shape"},
        },
    }
    appeal = {
        "type": "object",
        "description": "A complaint against a decision (DSA Art. 20), decided by a moderator who did not make "
                       "the decision, never automatically",
        "properties": {
            "object": {"const": "appeal"}, "id": {"type": "integer"}, "item_id": {"type": "integer"},
            "external_id": {"type": ["string", "null"]}, "policy": {"type": "string"}, "version": {"type": "integer"},
            "complainant": {"type": "string", "enum": ["affected", "notifier"]}, "reason": {"type": "string"},
            "status": {"type": "string", "enum": ["open", "upheld", "reversed"]},
            "received_at": {"type": "string", "format": "date-time"},
            "due_at": {"type": "string", "format": "date-time",
                       "description": f"When a decision is due ({settings.APPEAL_DEADLINE_DAYS} days after receipt)"},
            "decided_at": {"type": ["string", "null"], "format": "date-time"},
            "outcome_reason": {"type": ["string", "null"], "description": "The moderator's reason for the outcome"},
        },
    }
    appeal_input = {
        "type": "object", "additionalProperties": False, "required": ["external_id", "reason"],
        "properties": {
            "external_id": {"type": "string", "maxLength": 200,
                            "description": "Your id for the complaint: repeating it with the same complaint is safe"},
            "reason": {"type": "string", "maxLength": 5000, "description": "What the complainant says"},
            "complainant": {"type": "string", "enum": ["affected", "notifier"], "default": "affected"},
            "policy": {"type": "string", "description": "The policy (slug) whose decision is appealed; "
                                                        "left out: the item's latest decision"},
        },
    }
    moderation_result = {
        "type": "object",
        "properties": {
            "flagged": {"type": "boolean"},
            "categories": {"type": "object", "additionalProperties": {"type": "boolean"},
                           "description": "Per policy slug; a policy not yet cleared counts as flagged"},
            "category_scores": {"type": "object", "additionalProperties": {"type": "number"}},
            "category_applied_input_types": {"type": "object",
                                             "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            "item_id": {"type": "integer"},
            "status": {"type": "string", "enum": ["pending", "in_review", "decided"]},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{settings.SITE_NAME} API",
            "version": "1",
            "description": (
                "Submit content for moderation and learn the decisions. Authenticate with "
                "`Authorization: Bearer <token>` (admins create tokens in the console). A token holds scopes "
                "(`submit`: create items; `read`: read items and the policy list; `moderations`: /v1/moderations; "
                "`appeals`: file and read appeals), "
                "each operation needs one (its `security`), and it may expire (401 token_expired). A client "
                "classifies only under its allowed policies (403 policy_not_allowed names any other). Every item "
                "is scored by its policy's fast first pass; confidently safe items are closed at once, the rest "
                "go to the reasoning model (gpt-oss-safeguard) and, where needed, to people. Decisions reached "
                "after the response arrive by webhook. Errors are JSON: {\"error\": {message, type, param, code}}."
            ),
        },
        "servers": [{"url": base_url.rstrip("/")}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/items": {
                "post": {
                    "summary": "Submit one item",
                    "operationId": "createItem",
                    **_scope("submit"),
                    "parameters": [WAIT],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ItemInput")}}},
                    "responses": {
                        "201": _json(_ref("ItemState"), "Stored and routed"),
                        "200": _json(_ref("ItemState"), "Already stored under this external_id: nothing changed"),
                        **_errors(400, 401, 403, 404, 409, 413, 415, 429),
                    },
                }
            },
            "/api/v1/items/batch": {
                "post": {
                    "summary": f"Submit up to {max_batch} items, all or nothing",
                    "operationId": "createItems",
                    **_scope("submit"),
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": False, "required": ["items"],
                        "properties": {
                            "items": {"type": "array", "items": _ref("ItemInput"), "minItems": 1,
                                      "maxItems": max_batch},
                            "policies": {"type": "array", "items": {"type": "string"},
                                         "description": "Default policies for items that name none"},
                        },
                    }}}},
                    "responses": {
                        "201": _json({"type": "object", "properties": {
                            "object": {"const": "list"}, "created": {"type": "integer"},
                            "existing": {"type": "integer"}, "data": {"type": "array", "items": _ref("ItemState")},
                        }}, "Stored (at least one new item); data is in request order"),
                        "200": _json({"type": "object"}, "Every item was already stored"),
                        **_errors(400, 401, 403, 404, 409, 413, 415, 429),
                    },
                }
            },
            "/api/v1/items/{id}": {
                "get": {
                    "summary": "An item's status, verdicts and decision",
                    "operationId": "getItem",
                    **_scope("read"),
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
                                   WAIT],
                    "responses": {"200": _json(_ref("ItemState"), "The item"), **_errors(400, 401, 403, 404, 429)},
                }
            },
            "/api/v1/items/{id}/statements": {
                "get": {
                    "summary": "An item's enforcement actions and their statements of reasons",
                    "operationId": "getItemStatements",
                    **_scope("read"),
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "object": {"const": "list"}, "item_id": {"type": "integer"},
                        "data": {"type": "array", "items": {"allOf": [_ref("Action"), {"type": "object", "properties": {
                            "policy": {"type": "string"}, "version": {"type": "integer"},
                            "statement": {"oneOf": [_ref("Statement"), {"type": "null"}]}}}]}},
                    }}, "The actions, oldest first"), **_errors(401, 403, 404, 429)},
                }
            },
            "/api/v1/items/{id}/appeals": {
                "post": {
                    "summary": "File an appeal against the item's decision (idempotent by external_id)",
                    "operationId": "createAppeal",
                    **_scope("appeals"),
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("AppealInput")}}},
                    "responses": {
                        "201": _json(_ref("Appeal"), "Filed; the outcome arrives by webhook (appeal.decided)"),
                        "200": _json(_ref("Appeal"), "Already filed under this external_id: nothing changed"),
                        "409": _json(_ref("Error"), "The external_id was used for another complaint, or an appeal "
                                                    "against this decision is already open"),
                        **_errors(400, 401, 403, 404, 413, 415, 429),
                    },
                },
                "get": {
                    "summary": "The item's appeals and their outcomes",
                    "operationId": "listAppeals",
                    **_scope("appeals"),
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                    "responses": {"200": _json({"type": "object", "properties": {
                        "object": {"const": "list"}, "item_id": {"type": "integer"},
                        "data": {"type": "array", "items": _ref("Appeal")}}}, "The appeals, oldest first"),
                        **_errors(401, 403, 404, 429)},
                },
            },
            "/api/v1/items/by-external-id/{external_id}": {
                "get": {
                    "summary": "An item, by your external id",
                    "operationId": "getItemByExternalId",
                    **_scope("read"),
                    "parameters": [{"name": "external_id", "in": "path", "required": True,
                                    "schema": {"type": "string"}}, WAIT],
                    "responses": {"200": _json(_ref("ItemState"), "The item"), **_errors(400, 401, 403, 404, 429)},
                }
            },
            "/api/v1/erasures": {
                "post": {
                    "summary": "Erase the text of one of your items everywhere it is kept (decisions stay)",
                    "description": (
                        "Redacts the item's content, turns and metadata values, the model's reasoning, rationale "
                        "and raw outputs, moderators' reasons and comments, statement facts, webhook payloads "
                        "and the audit trail's copies; labels, decisions, actions and statements' other fields "
                        "stay. Idempotent: a repeat answers 200 with the first erasure."),
                    "operationId": "createErasure",
                    **_scope("erase"),
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": False,
                        "properties": {"item_id": {"type": "integer", "minimum": 1},
                                       "external_id": {"type": "string", "minLength": 1, "maxLength": 200}},
                        "oneOf": [{"required": ["item_id"]}, {"required": ["external_id"]}],
                    }}}},
                    "responses": {
                        "201": _json(_ref("Erasure"), "Erased"),
                        "200": _json(_ref("Erasure"), "Erased before: the earlier erasure"),
                        **_errors(400, 401, 403, 404, 413, 415, 429),
                    },
                }
            },
            "/api/v1/policies": {
                "get": {
                    "summary": "The policies this client may submit items under (its allowed policies)",
                    "operationId": "listPolicies",
                    **_scope("read"),
                    "responses": {"200": _json({"type": "object"}, "The policies"), **_errors(401, 403, 429)},
                }
            },
            "/v1/moderations": {
                "post": {
                    "summary": "OpenAI-compatible moderation (point the openai SDK's base_url at /v1)",
                    "operationId": "createModeration",
                    **_scope("moderations"),
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "additionalProperties": False, "required": ["input"],
                        "properties": {
                            "input": {"oneOf": [
                                {"type": "string"},
                                {"type": "array", "items": {"type": "string"}, "maxItems": max_batch},
                                {"type": "array", "items": {"type": "object", "properties": {
                                    "type": {"const": "text"}, "text": {"type": "string"}}}},
                            ]},
                            "model": {"type": "string", "description": (
                                "A policy's slug or name classifies under that policy (it must be one of the "
                                "client's allowed policies); anything else (e.g. omni-moderation-latest) is only "
                                "echoed back and the configured policies, else the client's defaults, apply")},
                        },
                    }}}},
                    "responses": {
                        "200": _json({"type": "object", "properties": {
                            "id": {"type": "string"}, "model": {"type": "string"},
                            "results": {"type": "array", "items": _ref("ModerationResult")},
                        }}, "One result per input, in order"),
                        **_errors(400, 401, 403, 404, 409, 413, 415, 429),
                    },
                }
            },
        },
        "webhooks": {
            "itemDecided": {
                "post": {
                    "summary": "An item's final decision (sent to the client's webhook URL)",
                    "description": (
                        "Sent when an item is decided after the API answered (reasoner or moderator), and when a "
                        "moderator changes a decision. Headers: X-Webhook-Id (the same on retries), "
                        "X-Webhook-Timestamp, X-Webhook-Signature = 'sha256=' + hex HMAC-SHA256 of "
                        "'<timestamp>.' + raw body with the client's webhook secret. Answer 2xx; anything else "
                        "is retried with exponential backoff."
                    ),
                    "requestBody": {"content": {"application/json": {"schema": {
                        "type": "object", "properties": {
                            "id": {"type": "string"}, "event": {"const": "item.decided"},
                            "created_at": {"type": "string", "format": "date-time"},
                            "item": {"allOf": [_ref("ItemState"), {"type": "object", "properties": {
                                "policies": {"type": "array", "items": {"allOf": [_ref("PolicyState"), {
                                    "type": "object", "properties": {
                                        "action": {"oneOf": [_ref("Action"), {"type": "null"}]},
                                        "statement": {"oneOf": [_ref("Statement"), {"type": "null"}]},
                                    }}]}},
                            }}], "description": "Each policy also carries the moderator's enforcement action and "
                                                "its statement of reasons (null when none)"},
                        },
                    }}}},
                    "responses": {"200": {"description": "Received"}},
                }
            },
            "appealDecided": {
                "post": {
                    "summary": "The outcome of an appeal (sent to the client's webhook URL, signed as itemDecided)",
                    "requestBody": {"content": {"application/json": {"schema": {
                        "type": "object", "properties": {
                            "id": {"type": "string"}, "event": {"const": "appeal.decided"},
                            "created_at": {"type": "string", "format": "date-time"},
                            "appeal": {"allOf": [_ref("Appeal"), {"type": "object", "properties": {
                                "action": _ref("Action"),
                                "statement": {"oneOf": [_ref("Statement"), {"type": "null"}]},
                            }}], "description": "The action now in force and its statement of reasons (null when "
                                                "the action no longer restricts)"},
                            "item": {"allOf": [_ref("ItemState")], "description": "The item as it now stands"},
                        },
                    }}}},
                    "responses": {"200": {"description": "Received"}},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "A client's API token. Scopes: submit, read, moderations, erase, appeals; it may "
                               "expire.",
            }},
            "schemas": {
                "ItemInput": item_input,
                "ItemState": item_state,
                "PolicyState": policy_state,
                "Verdict": verdict,
                "ModerationResult": moderation_result,
                "Action": action,
                "Statement": statement,
                "Erasure": {
                    "type": "object",
                    "properties": {
                        "object": {"const": "erasure"}, "id": {"type": "integer"}, "item_id": {"type": "integer"},
                        "external_id": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
                        "requested_via": {"type": "string"},
                        "redacted": {"type": "object", "additionalProperties": {"type": "integer"},
                                     "description": "Rows redacted, per app.model.column"},
                    },
                },
                "Appeal": appeal,
                "AppealInput": appeal_input,
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "object", "properties": {
                        "message": {"type": "string"}, "type": {"type": "string"},
                        "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]},
                    }}},
                },
            },
        },
    }
