"""Multi-policy accuracy: an example is right only when every policy's run is right about it."""

from __future__ import annotations

import pytest

from evaluations.multipolicy import MultiPolicyError, multi_policy_accuracy
from tests.evaluations.running import finished_run
from tests.factories import make_labeled_set, make_policy

pytestmark = pytest.mark.django_db(transaction=True)


def test_exact_match_counts_an_example_right_only_when_every_policy_is_right_about_it():
    spam, other = make_policy(name="Spam"), make_policy(name="Other")
    # The same four texts labelled under two policies; "free money" is spam under both, "giveaway" only
    # under the second, whose scripted verdict (keywords) is wrong about it there.
    first = finished_run(make_labeled_set(spam.policy, [("free money", "1"), ("lunch?", "0"), ("giveaway", "0"),
                                                        ("only in one set", "0")]), spam)
    second = finished_run(make_labeled_set(other.policy, [("free money", "1"), ("lunch?", "0"),
                                                          ("giveaway", "1")]), other)

    result = multi_policy_accuracy([first, second])

    assert result["examples"] == 3  # the text in one set only does not count
    assert result["exact_match"] == round(2 / 3, 4)
    assert result["per_policy"] == {spam.policy.slug: 1.0, other.policy.slug: round(2 / 3, 4)}


def test_runs_of_one_policy_or_a_single_run_are_refused():
    version = make_policy()
    labeled_set = make_labeled_set(version.policy, [("hello", "0")])
    run_a, run_b = finished_run(labeled_set, version), finished_run(labeled_set, version)

    with pytest.raises(MultiPolicyError, match="at least two"):
        multi_policy_accuracy([run_a])
    with pytest.raises(MultiPolicyError, match="same policy"):
        multi_policy_accuracy([run_a, run_b])
