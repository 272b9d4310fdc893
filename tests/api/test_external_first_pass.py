"""An external moderation endpoint as a policy's first pass: scored through ingestion against a real HTTP
server on 127.0.0.1, each kind of failure sending the items to the reasoner, and its audited configuration."""

from __future__ import annotations

import json
import random

import pytest
from prometheus_client import REGISTRY

from api import errors, external_first_pass, ingest, routing, training
from api.models import ExternalFirstPass, Route, RouteChoice, RoutingRule
from audit.models import AuditEvent
from console.intake import clean_item_input
from console.models import Classification
from tests.api.helpers import ModerationServer, moderation_answer
from tests.factories import make_policy
from tests.safeguard.helpers import separable_examples

SAFE_BELOW, VIOLATION_ABOVE = 0.1, 0.9


@pytest.fixture(autouse=True)
def _local_endpoints(settings):
    """The tests' endpoints listen on 127.0.0.1, which production refuses unless allowed."""
    settings.FIRST_PASS_ALLOWED_HOSTS = ["127.0.0.1"]


def _scores(text: str) -> dict[str, float]:
    """The stand-in endpoint's judgement: "buy" is spam, "maybe" is unsure; harassment is never mapped."""
    spam = 0.97 if "buy" in text else 0.5 if "maybe" in text else 0.01
    scam = 0.4 if "buy" in text else 0.03
    return {"spam": spam, "scam": scam, "harassment": 0.99}


@pytest.fixture
def endpoint():
    server = ModerationServer(moderation_answer(_scores))
    yield server
    server.close()


def _configure(admin_user, version, url, **fields):
    routing.set_routing_rule(actor=admin_user, version=version, safe_below=SAFE_BELOW,
                             violation_above=VIOLATION_ABOVE, sample_rate=0.0, violations_to_humans=True)
    values = {"category_map": "spam = violation\nscam = violation", "model": "guard-1", "api_key": "sk-test",
              "timeout_s": 2.0} | fields
    return external_first_pass.set_external_first_pass(actor=admin_user, policy=version.policy, url=url, **values)


def _submit(client, version, texts, prefix="x"):
    submissions = [ingest.Submission(clean_item_input(kind="message", source=client.source,
                                                      external_id=f"{prefix}-{i}", content=text), [version])
                   for i, text in enumerate(texts)]
    return ingest.ingest(client=client, submissions=submissions, rng=random.Random(0))


def _expected_route(score: float) -> str:
    if score < SAFE_BELOW:
        return RouteChoice.CLOSED
    return RouteChoice.HUMAN if score >= VIOLATION_ABOVE else RouteChoice.REASONER


def _fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("console_external_first_pass_fallback_items_total", {"reason": reason}) or 0.0


def test_the_endpoint_scores_a_batch_in_one_request_with_the_mapped_categories(acme, spam, admin_user, endpoint):
    _configure(admin_user, spam, endpoint.url)
    texts = ["hello friend", "buy cheap pills now", "maybe later", "see you at lunch"]
    states = _submit(acme[0], spam, texts)

    assert len(endpoint.requests) == 1
    headers, body = endpoint.requests[0]
    assert body == {"input": texts, "model": "guard-1"}
    assert headers["authorization"] == "Bearer sk-test"
    routes = {r.item_id: r for r in Route.objects.all()}
    for state, text in zip(states, texts, strict=True):
        expected = max(_scores(text)["spam"], _scores(text)["scam"])  # the unmapped harassment score is ignored
        route = routes[state["id"]]
        assert route.score == pytest.approx(expected)
        assert route.route == _expected_route(expected)
        assert route.model_id is None and route.note == ""
        fast = Classification.objects.get(item_id=state["id"], stage="fast")
        assert fast.model_name == "external:guard-1"
        assert fast.violation is (expected >= 0.5)
        reasoner = Classification.objects.filter(item_id=state["id"], stage="reasoner").exists()
        assert reasoner is (route.route == RouteChoice.REASONER)
    assert [routes[s["id"]].route for s in states] == ["closed", "human", "reasoner", "closed"]


def test_a_category_policy_gets_the_mapped_category_as_its_fast_label(acme, admin_user, endpoint):
    version = make_policy(name="Categorised spam", label_scheme="categories", output_format="label",
                          labels=["SP0", "SP2", "SP3"])
    acme_client = acme[0]  # ingestion itself does not check allowed policies (the API views do)
    _configure(admin_user, version, endpoint.url, category_map="spam = sp2, scam = SP3")
    assert ExternalFirstPass.objects.get(policy=version.policy).category_map == {"spam": "SP2", "scam": "SP3"}
    [violating, safe] = _submit(acme_client, version, ["buy now", "hello"])
    fast = Classification.objects.get(item_id=violating["id"], stage="fast")
    assert (fast.label, fast.category, fast.violation) == ("SP2", "SP2", True)
    fast = Classification.objects.get(item_id=safe["id"], stage="fast")
    assert fast.violation is False and fast.category == ""


def _closed_port_url() -> str:
    server = ModerationServer(moderation_answer(_scores))
    url = server.url
    server.close()
    return url


def _answer(status: int, raw: bytes):
    return lambda body: (status, raw)


def _results(body, mutate):
    results = [{"category_scores": _scores(text)} for text in body["input"]]
    return 200, json.dumps({"results": mutate(results)}).encode()


FAILURES = {
    "timeout": ("timeout", lambda: ModerationServer(moderation_answer(_scores), delay_s=1.5)),
    "http 500": ("http_status", lambda: ModerationServer(_answer(500, b'{"error": "down"}'))),
    "http 400 echoing the input": ("http_status", lambda: ModerationServer(
        lambda b: (400, json.dumps({"error": f"cannot read {b['input']}"}).encode()))),
    "not json": ("malformed", lambda: ModerationServer(_answer(200, b"<html>oops</html>"))),
    "no results": ("malformed", lambda: ModerationServer(_answer(200, b'{"results": "none"}'))),
    "score above 1": ("malformed", lambda: ModerationServer(lambda b: _results(
        b, lambda rs: [{"category_scores": {**r["category_scores"], "spam": 1.5}} for r in rs]))),
    "missing category": ("missing_score", lambda: ModerationServer(lambda b: _results(
        b, lambda rs: [{"category_scores": {"scam": 0.01}} for _ in rs]))),
    "NaN score": ("missing_score", lambda: ModerationServer(lambda b: (200, (
        '{"results": [' + ",".join('{"category_scores": {"spam": NaN, "scam": 0.01}}' for _ in b["input"])
        + "]}").encode()))),
    "wrong count": ("count", lambda: ModerationServer(lambda b: _results(b, lambda rs: rs[:-1]))),
}


@pytest.mark.parametrize("case", FAILURES, ids=list(FAILURES))
def test_every_failure_sends_the_items_to_the_reasoner_with_the_reason(case, acme, spam, admin_user):
    kind, make = FAILURES[case]
    server = make()
    try:
        _configure(admin_user, spam, server.url, timeout_s=0.3)
        before = _fallbacks(kind)
        states = _submit(acme[0], spam, ["hello friend", "see you at lunch"])  # both would close if scored
    finally:
        server.close()
    assert len(server.requests) == 1
    routes = list(Route.objects.all())
    assert {r.route for r in routes} == {RouteChoice.REASONER}
    assert {r.score for r in routes} == {None}
    assert all(r.note.startswith(f"external first pass failed ({kind})") for r in routes)
    assert not any("friend" in r.note for r in routes)  # an error body may echo the texts: never stored
    assert not Classification.objects.filter(stage="fast").exists()
    assert Classification.objects.filter(stage="reasoner", status="queued").count() == 2
    assert {s["status"] for s in states} == {"pending"}
    assert _fallbacks(kind) == before + 2
    intake = AuditEvent.objects.filter(action="item.created").order_by("-id").first()
    assert f"({kind})" in json.dumps(intake.after)


def test_a_refused_connection_sends_the_items_to_the_reasoner(acme, spam, admin_user):
    _configure(admin_user, spam, _closed_port_url())
    before = _fallbacks("connect")
    _submit(acme[0], spam, ["hello friend"])
    route = Route.objects.get()
    assert route.route == RouteChoice.REASONER and route.note.startswith("external first pass failed (connect)")
    assert _fallbacks("connect") == before + 1


def test_after_a_timeout_the_next_intake_skips_the_endpoint(acme, spam, admin_user):
    server = ModerationServer(moderation_answer(_scores), delay_s=1.0)
    try:
        _configure(admin_user, spam, server.url, timeout_s=0.2)
        _submit(acme[0], spam, ["hello friend"], prefix="a")
        _submit(acme[0], spam, ["see you at lunch"], prefix="b")
    finally:
        server.close()
    assert len(server.requests) == 1  # the second batch was not sent: the breaker was open
    notes = sorted(r.note.split(":")[0] for r in Route.objects.all())
    assert notes == ["external first pass failed (circuit_open)", "external first pass failed (timeout)"]


def test_a_large_batch_is_sent_in_requests_of_the_configured_size(acme, spam, admin_user, endpoint, settings):
    settings.FIRST_PASS_EXTERNAL_BATCH = 2
    _configure(admin_user, spam, endpoint.url)
    texts = [f"hello {i}" for i in range(5)]
    _submit(acme[0], spam, texts)
    assert [body["input"] for _, body in endpoint.requests] == [texts[0:2], texts[2:4], texts[4:5]]
    assert set(Route.objects.values_list("route", flat=True)) == {RouteChoice.CLOSED}


def test_a_changed_configuration_applies_to_the_next_intake(acme, spam, admin_user, endpoint):
    _configure(admin_user, spam, endpoint.url)
    _submit(acme[0], spam, ["buy now"], prefix="a")
    _configure(admin_user, spam, endpoint.url, category_map="scam = violation")  # 0.4: neither sure nor safe
    [state] = _submit(acme[0], spam, ["buy now"], prefix="b")
    route = Route.objects.get(item_id=state["id"])
    assert (route.score, route.route) == (pytest.approx(0.4), RouteChoice.REASONER)


def test_a_url_refused_after_it_was_saved_sends_the_items_to_the_reasoner(acme, spam, admin_user, endpoint,
                                                                           settings):
    _configure(admin_user, spam, endpoint.url)
    settings.FIRST_PASS_ALLOWED_HOSTS = []
    before = _fallbacks("unusable")
    _submit(acme[0], spam, ["hello friend"])
    assert endpoint.requests == []
    route = Route.objects.get()
    assert route.route == RouteChoice.REASONER and "the URL is refused now" in route.note
    assert _fallbacks("unusable") == before + 1


def test_a_request_that_cannot_be_made_sends_the_items_to_the_reasoner(acme, spam, admin_user):
    _configure(admin_user, spam, "http://127.0.0.1:99999/v1/moderations")  # no such port
    before = _fallbacks("error")
    [state] = _submit(acme[0], spam, ["hello friend"])
    route = Route.objects.get()
    assert route.route == RouteChoice.REASONER and route.note.startswith("external first pass failed (error)")
    assert state["status"] == "pending" and _fallbacks("error") == before + 1


def test_a_disabled_external_first_pass_leaves_the_built_in_routing(acme, spam, admin_user, endpoint):
    _configure(admin_user, spam, endpoint.url, enabled=False)
    _submit(acme[0], spam, ["buy now"])
    assert endpoint.requests == []
    route = Route.objects.get()
    assert (route.route, route.score, route.note) == (RouteChoice.REASONER, None, "")  # no built-in model: cold start


# --- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field"), [
    ({"url": "ftp://guard/v1/moderations"}, "url"),
    ({"url": "http://"}, "url"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"timeout_s": 31}, "timeout_s"),
    ({"category_map": ""}, "category_map"),
    ({"category_map": "spam"}, "category_map"),
    ({"category_map": "spam = violation\nspam = violation"}, "category_map"),
    ({"category_map": "spam = SP2"}, "category_map"),  # a binary policy maps to "violation" only
    ({"model": "m" * 201}, "model"),
])
def test_a_bad_configuration_is_refused_naming_the_field(fields, field, spam, admin_user, endpoint):
    values = {"url": endpoint.url, "category_map": "spam = violation"} | fields
    with pytest.raises(errors.ClientError) as refused:
        external_first_pass.set_external_first_pass(actor=admin_user, policy=spam.policy, **values)
    assert refused.value.field == field
    assert not ExternalFirstPass.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="external_first_pass").exists()


def test_a_private_address_is_refused_unless_allowed(spam, admin_user, endpoint, settings):
    settings.FIRST_PASS_ALLOWED_HOSTS = []
    with pytest.raises(errors.ClientError, match="FIRST_PASS_ALLOWED_HOSTS") as refused:
        external_first_pass.set_external_first_pass(actor=admin_user, policy=spam.policy, url=endpoint.url,
                                                    category_map="spam = violation")
    assert refused.value.field == "url"


def test_a_category_policy_refuses_an_unknown_or_safe_code(admin_user, endpoint):
    version = make_policy(name="Categorised", label_scheme="categories", output_format="label",
                          labels=["SP0", "SP2"])
    for code in ("SP9", "SP0", "violation"):
        with pytest.raises(errors.ClientError, match="not a violation category") as refused:
            external_first_pass.set_external_first_pass(actor=admin_user, policy=version.policy, url=endpoint.url,
                                                        category_map=f"spam = {code}")
        assert refused.value.field == "category_map"


def test_the_page_saves_an_audited_configuration_without_the_key(admin_client_, spam, endpoint):
    prefix = f"external-{spam.policy.pk}"
    form = {f"{prefix}-url": endpoint.url, f"{prefix}-model": "guard-1", f"{prefix}-api_key": "sk-secret",
            f"{prefix}-timeout_s": "1.5", f"{prefix}-category_map": "spam = violation", f"{prefix}-enabled": "on"}
    response = admin_client_.post(f"/integrations/first-pass/{spam.policy.slug}/external/", form)
    assert response.status_code == 302
    row = ExternalFirstPass.objects.get(policy=spam.policy)
    assert (row.url, row.model, row.api_key, row.timeout_s, row.enabled) == (endpoint.url, "guard-1", "sk-secret",
                                                                              1.5, True)
    [event] = AuditEvent.objects.filter(action="external_first_pass.changed")
    assert event.before is None and event.after["api_key_set"] is True
    assert "sk-secret" not in json.dumps(event.after)
    page = admin_client_.get("/integrations/first-pass/")
    assert "sk-secret" not in page.content.decode() and "set (not shown)" in page.content.decode()

    # Saved again without a key, the stored one stays and nothing is audited; a new key is an event.
    admin_client_.post(f"/integrations/first-pass/{spam.policy.slug}/external/", {**form, f"{prefix}-api_key": ""})
    assert ExternalFirstPass.objects.get().api_key == "sk-secret"
    assert AuditEvent.objects.filter(action="external_first_pass.changed").count() == 1
    admin_client_.post(f"/integrations/first-pass/{spam.policy.slug}/external/", {**form, f"{prefix}-api_key": "sk-2"})
    latest = AuditEvent.objects.filter(action="external_first_pass.changed").latest("id")
    assert latest.after["api_key_replaced"] is True and "sk-2" not in json.dumps(latest.after)

    admin_client_.post(f"/integrations/first-pass/{spam.policy.slug}/external/",
                       {**form, f"{prefix}-api_key": "", f"{prefix}-clear_api_key": "on"})
    assert ExternalFirstPass.objects.get().api_key == ""
    assert AuditEvent.objects.filter(action="external_first_pass.changed").latest("id").after["api_key_set"] is False

    admin_client_.post(f"/integrations/first-pass/{spam.policy.slug}/external/remove/")
    assert not ExternalFirstPass.objects.exists()
    assert AuditEvent.objects.filter(action="external_first_pass.removed").count() == 1


def test_the_page_names_the_field_of_a_refused_configuration(admin_client_, spam, endpoint):
    prefix = f"external-{spam.policy.pk}"
    form = {f"{prefix}-url": endpoint.url, f"{prefix}-timeout_s": "1", f"{prefix}-category_map": "spam = SP2"}
    response = admin_client_.post(f"/integrations/first-pass/{spam.policy.slug}/external/", form, follow=True)
    assert response.status_code == 200
    assert "category_map: " in response.content.decode()
    assert not ExternalFirstPass.objects.exists()
    response = admin_client_.post(f"/integrations/first-pass/{spam.policy.slug}/external/",
                                  {**form, f"{prefix}-timeout_s": "soon"}, follow=True)
    assert "timeout_s: " in response.content.decode()
    assert not ExternalFirstPass.objects.exists()


def test_only_admins_configure_an_external_first_pass(moderator_client, spam, endpoint):
    prefix = f"external-{spam.policy.pk}"
    response = moderator_client.post(f"/integrations/first-pass/{spam.policy.slug}/external/", {
        f"{prefix}-url": endpoint.url, f"{prefix}-timeout_s": "1", f"{prefix}-category_map": "spam = violation"})
    assert response.status_code in (302, 403)
    assert not ExternalFirstPass.objects.exists()


def test_a_threshold_retraining_chose_for_the_built_in_model_closes_nothing_on_the_endpoints_scores(
        acme, spam, admin_user, endpoint, settings):
    settings.FIRST_PASS_RECALL_MIN_VIOLATIONS = 50
    settings.FIRST_PASS_CATEGORY_MIN_VIOLATIONS = 15
    training.import_labeled_examples(actor=None, actor_name="system:test", policy=spam.policy,
                                     examples=separable_examples(), dataset="synthetic.csv")
    built_in = training.retrain_first_pass(policy=spam.policy, force=True)
    rule = RoutingRule.objects.get(policy_version=spam)
    assert rule.model_id == built_in.pk and rule.safe_below > 0  # retraining applied its threshold
    external_first_pass.set_external_first_pass(actor=admin_user, policy=spam.policy, url=endpoint.url,
                                                category_map="spam = violation", model="guard-1", api_key="",
                                                timeout_s=2.0)
    [quiet] = _submit(acme[0], spam, ["see you at lunch"])  # the endpoint scores it 0.01
    route = Route.objects.get(item_id=quiet["id"])
    assert route.score == pytest.approx(0.01) and route.route == RouteChoice.REASONER
    assert f"chosen for first-pass model #{built_in.pk}" in route.note
    # While the endpoint is the first pass, retraining proposes and says why it applies nothing.
    again = training.retrain_first_pass(policy=spam.policy, force=True)
    proposal = again.metrics["cv"]["proposal"]
    assert not proposal["apply"] and "first pass is an external endpoint" in proposal["reason"]
    assert RoutingRule.objects.get(policy_version=spam).model_id == built_in.pk
    # Thresholds an admin sets for the endpoint route by its scores again.
    _configure(admin_user, spam, endpoint.url)
    [closed] = _submit(acme[0], spam, ["see you at lunch"], prefix="y")
    assert Route.objects.get(item_id=closed["id"]).route == RouteChoice.CLOSED
