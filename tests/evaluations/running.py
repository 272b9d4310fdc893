"""Runs for the workbench's tests, made the way production makes them: runs.start_run queues the results
and the real reasoner pipeline (scripted engine) classifies them, finishing the run on its signal."""

from __future__ import annotations

from typing import Any

from evaluations import runs
from evaluations.models import EvaluationRun, LabeledSet
from policies_app import services as policy_services
from policies_app.models import PolicyVersion
from reasoner.pipeline import run_once
from safeguard.engines.scripted import ScriptedEngine
from tests.factories import POLICY_TEXT, make_labeled_set, make_policy

# The scripted engine's #if=<word> directive: a violation when the policy's text mentions the word. The
# first version does not mention it, the second does (a rule added), so the two disagree on such examples.
WORD = "lottery"
ADDED_RULE = "- SP2.b A lottery or prize draw the reader never entered.\n"


def drain(batch_size: int = 64) -> None:
    while run_once(ScriptedEngine(), "w1", batch_size=batch_size):
        pass


def two_versions(*, name: str = "") -> tuple[PolicyVersion, PolicyVersion]:
    """Version 1 (published) without the word, and version 2 (a draft) that adds a rule naming it."""
    first = make_policy(name=name)
    assert WORD not in first.text.lower()
    second = policy_services.save_version(
        actor=None, policy=first.policy, base_number=first.number,
        text=POLICY_TEXT.replace("## Safe content criteria", ADDED_RULE + "\n## Safe content criteria"),
        label_scheme=first.label_scheme, labels=first.labels, output_format=first.output_format,
        reasoning_effort=first.reasoning_effort, change_note="Lottery scams are spam",
    )
    return first, second


def finished_run(labeled_set: LabeledSet, version: PolicyVersion, **kwargs: Any) -> EvaluationRun:
    run = runs.start_run(actor=None, labeled_set=labeled_set, version=version, **kwargs)
    drain()
    run.refresh_from_db()
    return run


def flipping_set(policy: Any, rows: list[tuple[str, str]] | None = None) -> LabeledSet:
    """A set where version 2 gets one example wrong that version 1 got right, and two right that it
    got wrong; two are right and one wrong in both, and one gets no verdict from either."""
    return make_labeled_set(policy, rows or [
        (f"you won the {WORD}, claim it #if={WORD}", "1"),  # v1 wrong, v2 right
        (f"the {WORD} prize is yours #if={WORD}", "1"),  # v1 wrong, v2 right
        (f"our office {WORD} raised money for charity #if={WORD}", "0"),  # v1 right, v2 wrong
        ("free money, click here", "1"),  # both right
        ("buy now, limited offer", "1"),  # both right
        ("a quiet spam nobody spots", "1"),  # both wrong
        ("shrug #unparsable", "0"),  # no verdict in either
    ])


# A published version that names giveaways (recall 1.0 on GIVEAWAY_ROWS) and a draft that drops the
# rule (recall 1/3): the publish gate's case of a draft that recalls less.
GIVEAWAY_ROWS = [("win a giveaway #if=giveaway", "1"), ("another giveaway #if=giveaway", "1"), ("free money", "1"),
                 ("lunch?", "0")]


def giveaway_versions() -> tuple[PolicyVersion, PolicyVersion]:
    published = make_policy(text=POLICY_TEXT + "\n- SP2.b A giveaway that asks for details.")
    draft = policy_services.save_version(actor=None, policy=published.policy, base_number=published.number,
                                         text=POLICY_TEXT, label_scheme="binary", labels=[], output_format="binary",
                                         reasoning_effort="medium", change_note="drop the giveaway rule")
    return published, draft
