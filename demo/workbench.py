"""The demo's evaluation workbench: a labelled set for the harassment policy and one finished comparison of
its two versions (version 2 says that quoting abuse in a report is safe), so a newcomer sees runs,
metrics and a flipped example at once.

While no model is configured, both runs are answered with hand-written answers (the reasoning below and
a bare 0 or 1) through the reasoner's own evaluation lane, under the demo model name; with a model
configured, the runs are only started and the model answers them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings

from evaluations import runs, sets
from evaluations.models import LabeledSet
from policies_app.models import Policy
from reasoner.batch import EVALUATION
from reasoner.pipeline import Pipeline
from safeguard import Request
from safeguard.engines.scripted import ScriptedEngine, ScriptedReply

SPEC = Path(__file__).resolve().parent / "evaluation.json"

# Version 1 reads a quoted insult as the insult itself; version 2's HB0.c names quoting for moderators.
_V1_QUOTED = ("The message repeats an insult aimed at a member. HB0.c covers describing harassment one has "
              "experienced, but this text carries the abusive words themselves, and HB1 applies to insults "
              "whoever writes them down. Answer 1.")
_V2_QUOTED = ("The abusive words appear only inside a report to moderators. HB0.c says reporting harassment, "
              "including quoting the abusive message for moderators, is safe. Answer 0.")


def _answers(spec: dict[str, Any], v1_text: str) -> Any:
    by_text = {example["text"]: example for example in spec["examples"]}

    def answer(request: Request) -> ScriptedReply:
        example = by_text[request.content.text]
        first_version = request.policy.text == v1_text
        if example.get("quoted"):
            return ScriptedReply(_V1_QUOTED, "1") if first_version else ScriptedReply(_V2_QUOTED, "0")
        return ScriptedReply(f"{example['why']} Answer {example['label']}.", example["label"])

    return answer


def seed_workbench(writer: Any, model_name: str) -> int:
    """Make the set and its two runs once; how many demo answers were stored (0 when already there)."""
    spec = json.loads(SPEC.read_text())
    policy = Policy.objects.filter(slug=spec["policy"]).first()
    if policy is None or LabeledSet.objects.filter(policy=policy, name=spec["set"]).exists():
        return 0
    labeled_set = sets.create_set(actor=writer, policy=policy, name=spec["set"], description=spec["description"],
                                  source="demo/evaluation.json", required=True)
    sets.add_examples(actor=writer, labeled_set=labeled_set, source="demo/evaluation.json", examples=[
        sets.NewExample(label=example["label"], content=example["text"], row=n)
        for n, example in enumerate(spec["examples"], start=1)
    ])
    first, second = policy.versions.order_by("number")[:2]
    for version in (first, second):
        runs.start_run(actor=writer, labeled_set=labeled_set, version=version, note="demo comparison")
    if settings.SAFEGUARD_BACKEND:
        return 0  # a model is configured: the workers answer the runs
    pipeline = Pipeline(ScriptedEngine(_answers(spec, first.text), name=model_name), "demo-answers",
                        lanes=(EVALUATION,))
    stored = 0
    while True:
        batch = pipeline.claim()
        if not len(batch):
            return stored
        completions, error = pipeline.generate(batch)
        stored += len(pipeline.finish(batch, completions, error))
