from __future__ import annotations

import pytest

from api import services
from api.auth import hash_token
from api.models import ApiClient, FirstPassModel, LabeledExample
from console.models import AuditEvent, Classification, Review
from console.services import clean_item_input
from safeguard import firstpass
from tests.factories import make_item


def test_creating_a_client_returns_its_token_once_and_audits_without_it(admin_user, spam):
    client, token = services.create_client(actor=admin_user, name="Big Forum", default_policies=[spam.policy],
                                           rate_limit_per_minute=100)
    assert client.source == "big-forum"
    assert client.token_hash == hash_token(token)
    assert client.webhook_secret.startswith("whsec_")
    event = AuditEvent.objects.get(action="api_client.created")
    assert event.actor == admin_user
    assert event.after["default_policies"] == ["spam"]
    assert token not in str(event.after) and client.webhook_secret not in str(event.after)


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"name": " "}, "name"), ({"name": "acme"}, "name"), ({"name": "Other", "source": "acme"}, "source"),
     ({"name": "Other", "source": "!!!"}, "source"), ({"name": "Other", "webhook_url": "ftp://x"}, "webhook_url"),
     ({"name": "Other", "rate_limit_per_minute": 0}, "rate_limit_per_minute")],
)
def test_client_creation_refuses_bad_fields_and_changes_nothing(acme, admin_user, fields, field):
    before = ApiClient.objects.count(), AuditEvent.objects.count()
    with pytest.raises(services.ClientError) as refused:
        services.create_client(actor=admin_user, **fields)
    assert refused.value.field == field
    assert (ApiClient.objects.count(), AuditEvent.objects.count()) == before


def test_changing_and_revoking_a_client_are_audited(acme, admin_user, other_policy):
    client, _ = acme
    services.update_client(actor=admin_user, client=client, default_policies=[other_policy.policy],
                           webhook_url="https://example.org/hook", rate_limit_per_minute=5)
    changed = AuditEvent.objects.get(action="api_client.changed")
    assert changed.before["default_policies"] == ["spam"]
    assert changed.after["default_policies"] == ["harassment"]
    services.revoke_client(actor=admin_user, client=client)
    services.revoke_client(actor=admin_user, client=client)  # a second revoke changes nothing
    assert AuditEvent.objects.filter(action="api_client.revoked").count() == 1
    assert ApiClient.objects.active().count() == 0


def test_ingesting_writes_one_audit_event_per_new_item_naming_its_routes(acme, spam):
    client, _ = acme
    submissions = [
        services.Submission(clean_item_input(kind="message", source="acme", external_id=f"s-{i}", content="hi"),
                            [spam])
        for i in range(3)
    ]
    services.ingest(client=client, submissions=submissions)
    services.ingest(client=client, submissions=submissions)
    events = AuditEvent.objects.filter(action="item.created")
    assert events.count() == 3
    assert {e.actor_name for e in events} == {"api:acme"}
    assert {e.after["client"] for e in events} == {"Acme"}


def test_training_data_prefers_moderators_then_the_reasoner_then_imports(spam, moderator):
    reviewed = make_item(versions=[spam], content="cheap pills here")
    verdict_only = make_item(versions=[spam], content="lunch at noon?")
    for item, violation in ((reviewed, False), (verdict_only, False)):
        Classification.objects.filter(item=item).update(status="done", violation=violation, label="0")
    Review.objects.create(classification=Classification.objects.get(item=reviewed), decision="override",
                          label="1", reason="pills spam", reviewer=moderator)
    services.import_labeled_examples(actor=None, actor_name="system:test", policy=spam.policy, dataset="x.csv",
                                     examples=[firstpass.LabeledText("win a prize now", True)])
    texts, labels, counts = services.training_examples(spam.policy)
    assert dict(zip(texts, labels, strict=True)) == {"cheap pills here": True, "lunch at noon?": False,
                                                     "win a prize now": True}
    assert counts == {"reviews": 1, "reasoner": 1, "imported": 1}


def test_retraining_needs_enough_data_and_skips_unchanged_data(spam, spam_examples, settings):
    assert services.retrain_first_pass(policy=spam.policy) is None  # nothing to learn from
    services.import_labeled_examples(actor=None, actor_name="system:test", policy=spam.policy,
                                     examples=spam_examples, dataset="golden_dataset.csv")
    settings.FIRST_PASS_MIN_EXAMPLES = 100
    assert services.retrain_first_pass(policy=spam.policy) is None
    settings.FIRST_PASS_MIN_EXAMPLES = 20
    model = services.retrain_first_pass(policy=spam.policy)
    assert (model.n_examples, model.n_positive) == (40, 22)
    assert model.metrics["sources"] == {"reviews": 0, "reasoner": 0, "imported": 40}
    assert 0.5 < model.metrics["cv"]["auc"] <= 1.0
    assert 0 < model.metrics["cv"]["escalated_share_at_recall_95"] <= 1
    assert services.retrain_first_pass(policy=spam.policy) is None  # the data did not change
    assert services.retrain_first_pass(policy=spam.policy, force=True) is not None
    assert FirstPassModel.objects.filter(policy=spam.policy).count() == 2
    event = AuditEvent.objects.filter(action="first_pass.trained").first()
    assert event.actor_name == "system:first-pass"


def test_importing_labelled_examples_is_audited_and_refuses_an_empty_set(spam):
    with pytest.raises(services.ClientError):
        services.import_labeled_examples(actor=None, policy=spam.policy, examples=[], dataset="empty.csv")
    count = services.import_labeled_examples(actor=None, actor_name="system:test", policy=spam.policy,
                                             dataset="two.csv", examples=[firstpass.LabeledText("a", True),
                                                                          firstpass.LabeledText("b", False)])
    assert count == 2 == LabeledExample.objects.count()
    assert AuditEvent.objects.get(action="first_pass.examples_imported").after["violations"] == 1
