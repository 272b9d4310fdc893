"""Every write of the ingestion API: clients, routing rules, ingestion, labelled data, first-pass
models and webhook deliveries. Each write is atomic and audited; jobs are scheduled on commit."""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from api import decisions, jobs, routing, webhooks
from api.auth import PREFIX_LENGTH, hash_token, new_token
from api.models import (
    ApiClient,
    DeliveryStatus,
    FirstPassModel,
    LabeledExample,
    Route,
    RouteChoice,
    RoutingRule,
    WebhookDelivery,
)
from console import dispatch
from console.audit import record
from console.models import Classification, ClassificationStatus, Decision, Item, Review, Stage
from console.services import bulk_insert, create_items_bulk
from policies_app.models import Policy, PolicyVersion
from safeguard import firstpass
from safeguard.labels import canonical_label, is_safe_label

log = logging.getLogger(__name__)

KEEP_MODELS = 10  # first-pass models kept per policy (older ones are pruned at retraining)
CV_SAMPLE = 20_000  # examples cross-validated for a model's metrics


class ClientError(ValueError):
    """A refused client change; `field` names the form field at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# --- API clients ---------------------------------------------------------------------------------


def _client_snapshot(client: ApiClient) -> dict[str, Any]:
    return {
        "name": client.name,
        "source": client.source,
        "token_prefix": client.token_prefix,
        "default_policies": sorted(p.slug for p in client.default_policies.all()) if client.pk else [],
        "webhook_url": client.webhook_url,
        "rate_limit_per_minute": client.rate_limit_per_minute,
        "revoked_at": decisions.iso(client.revoked_at),
    }


def _check_client_fields(*, webhook_url: str, rate_limit_per_minute: int | None) -> None:
    if webhook_url and not webhook_url.startswith(("https://", "http://")):
        raise ClientError("The webhook URL must start with https:// or http://", "webhook_url")
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise ClientError("The rate limit must be at least 1 request per minute", "rate_limit_per_minute")


@transaction.atomic
def create_client(
    *,
    actor: Any,
    name: str,
    source: str = "",
    default_policies: list[Policy] | None = None,
    webhook_url: str = "",
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiClient, str]:
    """A new client and its token. The token is returned once and stored only as a hash."""
    name = (name or "").strip()
    if not name:
        raise ClientError("Give the client a name", "name")
    if ApiClient.objects.filter(name__iexact=name).exists():
        raise ClientError(f"A client named {name!r} already exists", "name")
    source = slugify(source or name)[:100]
    if not source:
        raise ClientError("The source must hold letters or digits", "source")
    if ApiClient.objects.filter(source=source).exists():
        raise ClientError(f"Another client already submits as source {source!r}", "source")
    _check_client_fields(webhook_url=webhook_url, rate_limit_per_minute=rate_limit_per_minute)
    token = new_token()
    client = ApiClient.objects.create(
        name=name,
        source=source,
        token_prefix=token[:PREFIX_LENGTH],
        token_hash=hash_token(token),
        webhook_url=webhook_url,
        webhook_secret="whsec_" + secrets.token_urlsafe(32),
        rate_limit_per_minute=rate_limit_per_minute,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    client.default_policies.set(default_policies or [])
    record(actor=actor, action="api_client.created", obj=client, after=_client_snapshot(client))
    return client, token


@transaction.atomic
def update_client(
    *,
    actor: Any,
    client: ApiClient,
    default_policies: list[Policy],
    webhook_url: str,
    rate_limit_per_minute: int | None,
) -> ApiClient:
    """Change what a client may default to, where its webhooks go, and its rate limit."""
    _check_client_fields(webhook_url=webhook_url, rate_limit_per_minute=rate_limit_per_minute)
    client = ApiClient.objects.select_for_update().get(pk=client.pk)
    before = _client_snapshot(client)
    client.webhook_url = webhook_url
    client.rate_limit_per_minute = rate_limit_per_minute
    client.save(update_fields=["webhook_url", "rate_limit_per_minute"])
    client.default_policies.set(default_policies)
    after = _client_snapshot(client)
    if before != after:
        record(actor=actor, action="api_client.changed", obj=client, before=before, after=after)
    return client


@transaction.atomic
def revoke_client(*, actor: Any, client: ApiClient) -> ApiClient:
    """Stop a client's token working, for good (issue a new client to restore access)."""
    client = ApiClient.objects.select_for_update().get(pk=client.pk)
    if client.revoked_at is not None:
        return client
    before = _client_snapshot(client)
    client.revoked_at = timezone.now()
    client.save(update_fields=["revoked_at"])
    record(actor=actor, action="api_client.revoked", obj=client, before=before, after=_client_snapshot(client))
    return client


# --- routing rules -------------------------------------------------------------------------------


@transaction.atomic
def set_routing_rule(
    *,
    actor: Any,
    version: PolicyVersion,
    safe_below: float,
    violation_above: float,
    sample_rate: float,
    violations_to_humans: bool,
) -> RoutingRule:
    """Set the thresholds `version` routes first-pass scores by."""
    if not 0 <= safe_below <= violation_above <= 1:
        raise ClientError("Thresholds must satisfy 0 ≤ safe below ≤ violation at or above ≤ 1", "safe_below")
    if not 0 <= sample_rate <= 1:
        raise ClientError("The quality-check share is between 0 and 1", "sample_rate")
    rule = RoutingRule.objects.select_for_update().filter(policy_version=version).first()
    fields = ("safe_below", "violation_above", "sample_rate", "violations_to_humans")
    before = {f: getattr(rule, f) for f in fields} if rule else None
    rule = rule or RoutingRule(policy_version=version)
    rule.safe_below, rule.violation_above = safe_below, violation_above
    rule.sample_rate, rule.violations_to_humans = sample_rate, violations_to_humans
    rule.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    rule.save()
    after = {f: getattr(rule, f) for f in fields}
    if before != after:
        record(actor=actor, action="routing_rule.changed", obj=rule, before=before, after=after)
    return rule


# --- ingestion -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Submission:
    """One item to ingest: `data` is console.services.clean_item_input output; `versions` the
    published policy versions (with .policy loaded) to route it under."""

    data: dict[str, Any]
    versions: list[PolicyVersion]


# QC sampling needs no cryptographic randomness: one generator per process, seeded from the OS.
_random = random.Random()


@transaction.atomic
def ingest(*, client: ApiClient, submissions: list[Submission], rng: random.Random | None = None
           ) -> list[dict[str, Any]]:
    """Store a batch of items for `client`, score and route each under each of its policy versions.

    All or nothing (one transaction); idempotent on (source, external id): a repeat returns the stored
    item's state, with "created": false, and routes nothing. Returns each item's state, in order.
    """
    rng = rng or _random
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")  # what every auto_now field of this transaction holds
        (now,) = cursor.fetchone()
    texts = [routing.item_text(s.data["kind"], s.data["content"], s.data["turns"]) for s in submissions]
    versions = {v.id: v for s in submissions for v in s.versions}
    thresholds = routing.thresholds_for(versions.values())
    models = routing.active_models({v.policy_id for v in versions.values()})
    members: dict[int, list[int]] = defaultdict(list)
    for index, submission in enumerate(submissions):
        for version in submission.versions:
            members[version.id].append(index)
    routed: dict[tuple[int, int], routing.Routed] = {}
    for version_id, indexes in members.items():
        version = versions[version_id]
        results = routing.route_texts(version, [texts[i] for i in indexes], thresholds[version_id],
                                      models.get(version.policy_id), rng)
        routed.update({(i, version_id): r for i, r in zip(indexes, results, strict=True)})

    audit_after = [
        {
            "client": client.name,
            "routes": {
                f"{v.policy.slug} v{v.number}": {"route": routed[(i, v.id)].route, "score": routed[(i, v.id)].score}
                for v in s.versions
            },
        }
        for i, s in enumerate(submissions)
    ]
    stored = create_items_bulk(actor=None, actor_name=f"api:{client.source}", items=[s.data for s in submissions],
                               audit_after=audit_after)
    created = [i for i, (_, was_created) in enumerate(stored) if was_created]
    pairs = [(i, v) for i in created for v in submissions[i].versions]
    route_rows = [routed[(i, v.id)] for i, v in pairs]
    # The fast stage's label in each policy's own scheme: (violation label, safe label).
    labels = {v.id: (canonical_label(spec, True, ""), canonical_label(spec, False, ""))
              for v in versions.values() for spec in [v.as_spec()]}
    if pairs:
        bulk_insert(Route, {
            "item_id": [stored[i][0] for i, _ in pairs],
            "policy_version_id": [v.id for _, v in pairs],
            "route": [r.route for r in route_rows],
            "score": [r.score for r in route_rows],
            "model_id": [r.model_id for r in route_rows],
        })
    # One INSERT for both stages: the fast verdict (done) wherever a model scored the item, and the
    # reasoner's work (queued) wherever the route is the reasoner.
    stage_rows: list[tuple[Any, ...]] = []
    for (i, version), r in zip(pairs, route_rows, strict=True):
        item_id = stored[i][0]
        if r.score is not None:
            violation = r.score >= 0.5
            # People see quality-check samples and confident violations routed to them.
            stage_rows.append((item_id, version.id, Stage.FAST, ClassificationStatus.DONE,
                               labels[version.id][0 if violation else 1], violation, r.score,
                               f"first-pass #{r.model_id}", r.route in (RouteChoice.QC_SAMPLE, RouteChoice.HUMAN),
                               now))
        if r.route == RouteChoice.REASONER:
            stage_rows.append((item_id, version.id, Stage.REASONER, ClassificationStatus.QUEUED, "", None, None, "",
                               False, None))
    if stage_rows:
        names = ("item_id", "policy_version_id", "stage", "status", "label", "violation", "confidence", "model_name",
                 "needs_review", "finished_at")
        bulk_insert(Classification, dict(zip(names, map(list, zip(*stage_rows, strict=True)), strict=True)))
    if any(row[2] == Stage.REASONER for row in stage_rows):
        transaction.on_commit(dispatch.wake_reasoner)
    transaction.on_commit(jobs.ensure_scheduled)
    return _states(submissions, stored, routed, labels, now)


def _states(submissions: list[Submission], stored: list[tuple[int, bool]],
            routed: dict[tuple[int, int], routing.Routed], labels: dict[int, tuple[str, str]], now: Any
            ) -> list[dict[str, Any]]:
    """Each item's state: built from what was just written for new items, loaded for repeats."""
    existing = decisions.item_states({pk for pk, created in stored if not created})
    return [
        {**(_fresh(index, submission, pk, routed, labels, now) if created else existing[pk]), "created": created}
        for index, (submission, (pk, created)) in enumerate(zip(submissions, stored, strict=True))
    ]


def _fresh(index: int, submission: Submission, pk: int, routed: dict[tuple[int, int], routing.Routed],
           labels: dict[int, tuple[str, str]], now: Any) -> dict[str, Any]:
    policies = []
    for version in sorted(submission.versions, key=lambda v: (v.policy.slug, v.id)):
        r = routed[(index, version.id)]
        rows = []
        if r.score is not None:
            rows.append({"id": 0, "stage": Stage.FAST, "status": ClassificationStatus.DONE,
                         "label": labels[version.id][0 if r.score >= 0.5 else 1], "violation": r.score >= 0.5,
                         "category": "", "rule_ids": [], "confidence": r.score, "rationale": "",
                         "needs_review": r.route in (RouteChoice.QC_SAMPLE, RouteChoice.HUMAN), "finished_at": now})
        if r.route == RouteChoice.REASONER:
            rows.append({"id": 0, "stage": Stage.REASONER, "status": ClassificationStatus.QUEUED, "label": "",
                         "violation": None, "category": "", "rule_ids": [], "confidence": None, "rationale": "",
                         "needs_review": False, "finished_at": None})
        policies.append(decisions.policy_state(
            {"slug": version.policy.slug, "number": version.number},
            {"route": r.route, "score": r.score, "created_at": now}, rows, [],
        ))
    data = submission.data
    item = {"id": pk, "source": data["source"], "external_id": data["external_id"], "kind": data["kind"],
            "created_at": now}
    return decisions.item_state(item, policies)


# --- labelled data and first-pass models ------------------------------------------------------------


@transaction.atomic
def import_labeled_examples(*, actor: Any, policy: Policy, examples: list[firstpass.LabeledText], dataset: str,
                            actor_name: str = "") -> int:
    """Add labelled texts a policy's first pass will learn from at its next retraining."""
    dataset = (dataset or "import").strip()[:200]
    rows = [e for e in examples if e.text.strip()]
    if not rows:
        raise ClientError("The file holds no labelled examples", "file")
    LabeledExample.objects.bulk_create(
        [LabeledExample(policy=policy, text=e.text, violation=e.violation, label=e.label[:60], dataset=dataset)
         for e in rows]
    )
    record(actor=actor, actor_name=actor_name, action="first_pass.examples_imported", obj=policy,
           after={"dataset": dataset, "examples": len(rows), "violations": sum(e.violation for e in rows)})
    return len(rows)


def _review_violation(decision: str, label: str, category: str, reviewed: bool | None) -> bool | None:
    if decision == Decision.OVERRIDE:
        return not is_safe_label(label or category)
    return reviewed


def training_examples(policy: Policy) -> tuple[list[str], list[bool], dict[str, int]]:
    """What a policy's first pass learns from, newest first, at most FIRST_PASS_MAX_EXAMPLES:
    moderators' decisions, then reasoner verdicts nobody reviewed (distillation), then imported sets."""
    limit = settings.FIRST_PASS_MAX_EXAMPLES
    texts: list[str] = []
    labels: list[bool] = []
    seen: set[int] = set()
    counts = {"reviews": 0, "reasoner": 0, "imported": 0}
    reviews = (
        Review.objects.filter(classification__policy_version__policy=policy)
        .exclude(decision=Decision.ESCALATE)
        .order_by("-created_at", "-id")
        .values_list("classification__item_id", "decision", "label", "category", "classification__violation",
                     "classification__item__kind", "classification__item__content", "classification__item__turns")
    )
    for item_id, decision, label, category, reviewed, kind, content, turns in reviews[:limit].iterator():
        violation = _review_violation(decision, label, category, reviewed)
        if item_id in seen or violation is None:
            continue
        seen.add(item_id)
        texts.append(routing.item_text(kind, content, turns))
        labels.append(violation)
        counts["reviews"] += 1
    verdicts = (
        Classification.objects.filter(policy_version__policy=policy, stage=Stage.REASONER,
                                      status=ClassificationStatus.DONE, violation__isnull=False)
        .order_by("-finished_at", "-id")
        .values_list("item_id", "violation", "item__kind", "item__content", "item__turns")
    )
    for item_id, violation, kind, content, turns in verdicts[: max(0, limit - len(texts))].iterator():
        if item_id in seen:
            continue
        seen.add(item_id)
        texts.append(routing.item_text(kind, content, turns))
        labels.append(violation)
        counts["reasoner"] += 1
    for text, violation in LabeledExample.objects.for_policy(policy).values_list("text", "violation")[
        : max(0, limit - len(texts))
    ].iterator():
        texts.append(text)
        labels.append(violation)
        counts["imported"] += 1
    return texts, labels, counts


def _fingerprint(texts: list[str], labels: list[bool]) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(b"1" if label else b"0")
        digest.update(text.encode("utf-8", "replace"))
        digest.update(b"\x00")
    return digest.hexdigest()


def _cross_validated(texts: list[str], labels: list[bool]) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    if len(texts) > CV_SAMPLE:
        picked = random.Random(0).sample(range(len(texts)), CV_SAMPLE)
        texts, labels = [texts[i] for i in picked], [labels[i] for i in picked]
    scores = firstpass.out_of_fold_scores(texts, labels)
    threshold = firstpass.threshold_for_recall(scores, labels, 0.95)
    return {
        "auc": round(float(roc_auc_score(labels, scores)), 4),
        "threshold_at_recall_95": round(threshold, 4),
        "escalated_share_at_recall_95": round(firstpass.escalated_share(scores, threshold), 4),
        "examples": len(texts),
    }


def retrain_first_pass(*, policy: Policy, actor: Any = None, force: bool = False) -> FirstPassModel | None:
    """Train a new first-pass model for `policy` from its labelled data, when there is enough data
    and it changed since the last model (or `force`). Returns the new model, or None."""
    texts, labels, counts = training_examples(policy)
    positives = sum(labels)
    if (len(labels) < settings.FIRST_PASS_MIN_EXAMPLES
            or min(positives, len(labels) - positives) < settings.FIRST_PASS_MIN_PER_CLASS):
        log.info("first pass for %s: %d examples (%d violations) is too few to train on", policy.slug,
                 len(labels), positives)
        return None
    fingerprint = _fingerprint(texts, labels)
    latest = FirstPassModel.objects.filter(policy=policy).order_by("-trained_at", "-id").first()
    if not force and latest is not None and latest.metrics.get("fingerprint") == fingerprint:
        return None
    model = firstpass.train(texts, labels)  # seconds to minutes: outside the transaction
    metrics = {"sources": counts, "cv": _cross_validated(texts, labels), "fingerprint": fingerprint}
    return _store_model(actor=actor, policy=policy, model=model, metrics=metrics)


@transaction.atomic
def _store_model(*, actor: Any, policy: Policy, model: firstpass.Model, metrics: dict[str, Any]) -> FirstPassModel:
    row = FirstPassModel.objects.create(policy=policy, model=firstpass.dumps(model), n_examples=model.n_examples,
                                        n_positive=model.n_positive, metrics=metrics)
    record(actor=actor, actor_name="" if actor else "system:first-pass", action="first_pass.trained", obj=row,
           after={"policy": policy.slug, "n_examples": row.n_examples, "n_positive": row.n_positive,
                  "sources": metrics["sources"], "cv": metrics["cv"]})
    old = FirstPassModel.objects.filter(policy=policy).order_by("-trained_at", "-id").values_list("id", flat=True)
    FirstPassModel.objects.filter(id__in=list(old[KEEP_MODELS:])).delete()
    return row


# --- webhooks ------------------------------------------------------------------------------------


@transaction.atomic
def queue_decision_delivery(*, item_id: int) -> WebhookDelivery | None:
    """Queue a webhook telling the item's client its decision, when the item is decided, the client
    has a webhook URL, and this outcome was not told before. Returns the new delivery, if any."""
    source = Item.objects.filter(pk=item_id).values_list("source", flat=True).first()
    client = ApiClient.objects.active().filter(source=source).exclude(webhook_url="").first() if source else None
    if client is None:
        return None
    state = decisions.item_states([item_id]).get(item_id)
    if state is None or state["status"] != decisions.DECIDED:
        return None
    closed_at_once = all(p["route"] in (RouteChoice.CLOSED, RouteChoice.QC_SAMPLE) for p in state["policies"])
    if closed_at_once and not state["decision"]["flagged"] and not WebhookDelivery.objects.filter(
        item_id=item_id
    ).exists():
        return None  # the API's answer already said "closed, not flagged" (a quality check confirmed it)
    delivery, created = WebhookDelivery.objects.get_or_create(
        item_id=item_id,
        decision_key=decisions.decision_key(state),
        defaults={"client": client, "event": "item.decided", "url": client.webhook_url, "payload": {},
                  "next_attempt_at": timezone.now()},
    )
    if not created:
        return None
    delivery.payload = {"id": f"whd_{delivery.pk}", "event": delivery.event, "created_at": decisions.iso(
        delivery.created_at), "item": state}
    delivery.save(update_fields=["payload"])
    record(actor=None, actor_name="system:webhooks", action="webhook.queued", obj=delivery,
           after={"client": client.name, "item": item_id, "flagged": state["decision"]["flagged"]})
    transaction.on_commit(lambda: jobs.enqueue_delivery(delivery.pk))
    return delivery


def backoff_s(attempts: int) -> float:
    """Wait after the `attempts`-th failed attempt: WEBHOOK_BACKOFF_S, doubling, capped."""
    return min(settings.WEBHOOK_BACKOFF_S * 2 ** max(0, attempts - 1), settings.WEBHOOK_BACKOFF_MAX_S)


@transaction.atomic
def attempt_delivery(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one attempt at a pending delivery and log it; schedule the next after a failure.

    The row stays locked during the request (at most WEBHOOK_TIMEOUT_S), so two workers holding
    copies of the job never post the same delivery twice. None: nothing to do (done, or held).
    """
    delivery = (
        WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",)).select_related("client")
        .filter(pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING]).first()
    )
    if delivery is None:
        return None
    if delivery.next_attempt_at and delivery.next_attempt_at > timezone.now() + timedelta(seconds=0.5):
        return None  # a duplicate job came early (the sweeper's copy): the scheduled attempt will run
    before = {"status": delivery.status, "attempts": delivery.attempts}
    client = delivery.client
    if not client.is_active or not client.webhook_url:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        delivery.error = "the client was revoked" if not client.is_active else "the client has no webhook URL now"
        delivery.save()
        record(actor=None, actor_name="system:webhooks", action="webhook.failed", obj=delivery, before=before,
               after={"status": delivery.status, "error": delivery.error})
        return delivery
    delivery.url = client.webhook_url
    result = webhooks.post(delivery.url, delivery.payload, secret=client.webhook_secret,
                           delivery_id=f"whd_{delivery.pk}")
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_code = result.status_code
    delivery.response_excerpt = result.excerpt[:500]
    delivery.error = result.error[:500]
    if result.ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = DeliveryStatus.DELIVERED, now, None
        action = "webhook.delivered"
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        action = "webhook.failed"
    else:
        delay = backoff_s(delivery.attempts)
        delivery.status, delivery.next_attempt_at = DeliveryStatus.RETRYING, now + timedelta(seconds=delay)
        action = "webhook.retrying"
        # RQ schedules at whole seconds, rounding down: one more second keeps the job from coming early.
        transaction.on_commit(lambda: jobs.enqueue_delivery(delivery.pk, delay_s=delay + 1))
    delivery.save()
    record(actor=None, actor_name="system:webhooks", action=action, obj=delivery, before=before,
           after={"status": delivery.status, "attempts": delivery.attempts, "response_code": result.status_code,
                  "error": delivery.error, "next_attempt_at": decisions.iso(delivery.next_attempt_at)})
    return delivery


@transaction.atomic
def redeliver(*, actor: Any, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again from the start (an admin's decision after fixing the receiver)."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    before = {"status": delivery.status, "attempts": delivery.attempts}
    delivery.status, delivery.attempts, delivery.next_attempt_at = DeliveryStatus.PENDING, 0, timezone.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    record(actor=actor, action="webhook.redeliver", obj=delivery, before=before, after={"status": delivery.status})
    transaction.on_commit(lambda: jobs.enqueue_delivery(delivery.pk))
    return delivery
