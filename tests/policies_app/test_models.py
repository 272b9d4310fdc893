from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from policies_app.models import ImmutableVersionError, Policy, PolicyVersion

pytestmark = pytest.mark.django_db


def test_it_refuses_to_change_a_saved_versions_text_through_the_orm(spam_policy):
    spam_policy.text = "Something else entirely"
    with pytest.raises(ImmutableVersionError):
        spam_policy.save()
    assert PolicyVersion.objects.get(pk=spam_policy.pk).text != "Something else entirely"


@pytest.mark.parametrize(
    ("column", "value"),
    [("text", "'rewritten in SQL'"), ("labels", "'[\"A\", \"B\"]'::jsonb"), ("reasoning_effort", "'high'"),
     ("number", "99")],
)
def test_the_database_refuses_to_change_what_a_version_says_even_in_raw_sql(spam_policy, column, value):
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE policies_app_policyversion SET {column} = {value} WHERE id = %s", [spam_policy.pk])
    assert PolicyVersion.objects.get(pk=spam_policy.pk).text == spam_policy.text


def test_the_database_still_lets_a_versions_status_change(spam_policy):
    PolicyVersion.objects.filter(pk=spam_policy.pk).update(status="retired", change_note="abandoned")
    spam_policy.refresh_from_db()
    assert (spam_policy.status, spam_policy.change_note) == ("retired", "abandoned")


def test_versions_cannot_be_deleted_through_the_orm_or_raw_sql(spam_policy):
    with pytest.raises(DatabaseError), transaction.atomic():
        spam_policy.delete()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM policies_app_policyversion WHERE id = %s", [spam_policy.pk])
    with pytest.raises(DatabaseError), transaction.atomic():
        PolicyVersion.objects.filter(policy=spam_policy.policy).delete()
    assert PolicyVersion.objects.filter(policy=spam_policy.policy).count() == 2


def test_a_policy_has_at_most_one_published_version(spam_policy):
    assert spam_policy.policy.versions.filter(status="published").count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyVersion.objects.filter(pk=spam_policy.pk).update(status="published")
    assert spam_policy.policy.published_version().number == 1


def test_the_list_annotations_name_the_published_and_latest_versions(spam_policy, writer):
    policy = Policy.objects.with_version_summary().get(pk=spam_policy.policy_id)
    assert (policy.published_number, policy.latest_number, policy.latest_status) == (1, 2, "draft")
    assert policy.latest_author == writer.username
    assert policy.latest_created_at == spam_policy.created_at
    assert list(Policy.objects.matching("  sPa ")) == [spam_policy.policy]
    assert list(Policy.objects.matching("ham")) == []
