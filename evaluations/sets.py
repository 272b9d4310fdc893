"""Every write to labelled sets: create, add examples (checked against the policy's labels, deduplicated by
content), relabel, delete, and a golden set made from moderators' final decisions. Each function is
atomic, audited, and changes nothing when it refuses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from audit.writer import Entry, entry, record, record_many
from console.models import Classification, Review, ReviewStatus
from evaluations.models import Example, LabeledSet, content_hash
from policies_app.models import ContentKind, LabelScheme, Policy, PolicyVersion
from safeguard.labels import is_safe_label, match_category

MAX_EXAMPLE_CHARS = 200_000  # the API's limit for one item's text (API_MAX_CONTENT_CHARS' default)


class SetError(ValueError):
    """A refused change to a labelled set; `row` and `column` say where in an imported file, if known."""

    def __init__(self, message: str, *, row: int | None = None, column: str = "") -> None:
        where = ", ".join(part for part in (f"row {row}" if row is not None else "",
                                            f"column {column!r}" if column else "") if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.row, self.column = row, column


@dataclass(frozen=True)
class NewExample:
    """An example to add: text (or turns), and its label in the policy's scheme. `row` is its row number
    in the file it came from, for error messages and the example's record."""

    label: str
    content: str = ""
    turns: list[dict[str, str]] | None = None
    kind: str = ContentKind.MESSAGE
    row: int | None = None


@dataclass
class Added:
    """What `add_examples` did: how many were new, and which rows repeated an example already there."""

    added: int = 0
    duplicates: int = 0
    relabel_conflicts: list[int] = field(default_factory=list)  # rows whose content is there with another label


def scheme_version(policy: Policy) -> PolicyVersion:
    """The version whose labels a set of this policy is checked against: the published one, else the
    newest draft."""
    version = policy.published_version() or policy.latest_version()
    if version is None:
        raise SetError(f"{policy} has no version yet, so it has no labels to check examples against")
    return version


def allowed_labels(version: PolicyVersion) -> list[str]:
    if version.label_scheme == LabelScheme.BINARY:
        return ["0", "1"]
    if version.label_scheme == LabelScheme.VALID_INVALID:
        return ["VALID", "INVALID"]
    return list(version.labels or [])


def meaning(version: PolicyVersion, label: str, *, row: int | None = None, column: str = "") -> tuple[str, bool, str]:
    """(label as the policy writes it, violation, category) for a label in the version's scheme; a label
    the policy does not define is refused, naming it and the labels that are."""
    label = str(label).strip()
    labels = allowed_labels(version)
    if version.label_scheme == LabelScheme.CATEGORIES:
        category, _rule = match_category(label, tuple(labels))
        matched = next((known for known in labels if known.upper() == category.upper()), None)
        if matched is None:
            raise SetError(f"{label!r} is not a label of {version} ({', '.join(labels)})", row=row, column=column)
        return matched, not is_safe_label(matched), matched
    matched = next((known for known in labels if known.upper() == label.upper()), None)
    if matched is None:
        raise SetError(f"{label!r} is not a label of {version} ({' or '.join(labels)})", row=row, column=column)
    return matched, not is_safe_label(matched), ""


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def create_set(*, actor: Any, policy: Policy, name: str, description: str = "", source: str = "",
               required: bool = False, actor_name: str = "") -> LabeledSet:
    name = " ".join(str(name).split())[:200]
    if not name:
        raise SetError("A labelled set needs a name")
    if LabeledSet.objects.filter(policy=policy, name__iexact=name).exists():
        raise SetError(f"{policy} already has a labelled set named {name!r}")
    with transaction.atomic():
        labeled_set = LabeledSet.objects.create(policy=policy, name=name, description=description[:300],
                                                source=source[:300], required=required, created_by=_user(actor))
        record(actor=actor, actor_name=actor_name, action="labeled_set.created", obj=labeled_set,
               after={"policy": policy.slug, "name": name, "source": labeled_set.source, "required": required})
    return labeled_set


def set_required(*, actor: Any, labeled_set: LabeledSet, required: bool, actor_name: str = "") -> LabeledSet:
    """Mark the set required (a draft whose recall on it drops too far cannot be published: evaluations.gate)
    or not; nothing happens, and nothing is audited, when it already is so."""
    with transaction.atomic():
        locked = LabeledSet.objects.select_for_update().get(pk=labeled_set.pk)
        if locked.required == required:
            labeled_set.required = required
            return labeled_set
        locked.required = required
        locked.save(update_fields=["required"])
        record(actor=actor, actor_name=actor_name, action="labeled_set.required_changed", obj=locked,
               before={"required": not required}, after={"required": required})
    labeled_set.required = required
    return labeled_set


def find_or_create_set(*, actor: Any, policy: Policy, name: str, actor_name: str = "", **fields: Any) -> LabeledSet:
    existing = LabeledSet.objects.filter(policy=policy, name__iexact=" ".join(str(name).split())).first()
    return existing or create_set(actor=actor, policy=policy, name=name, actor_name=actor_name, **fields)


def _checked(version: PolicyVersion, new: NewExample) -> Example:
    if new.turns is None and not new.content.strip():
        raise SetError("the example has no text", row=new.row)
    size = len(new.content) + sum(len(t.get("content", "")) for t in new.turns or [])
    if size > MAX_EXAMPLE_CHARS:
        raise SetError(f"the example is {size:,} characters, more than the {MAX_EXAMPLE_CHARS:,} allowed", row=new.row)
    for text in [new.content, *(t.get("content", "") for t in new.turns or [])]:
        if "\x00" in text:
            raise SetError("the text holds a NUL character", row=new.row)
    label, violation, category = meaning(version, new.label, row=new.row)
    return Example(kind=new.kind, content=new.content, turns=new.turns, label=label, violation=violation,
                   category=category, content_hash=content_hash(new.kind, new.content, new.turns), source_row=new.row)


def add_examples(*, actor: Any, labeled_set: LabeledSet, examples: Sequence[NewExample], actor_name: str = "",
                 source: str = "") -> Added:
    """Add examples, all or none: every label is checked first (the first bad one refuses the lot, naming
    its row). An example whose content is already in the set is not added again."""
    version = scheme_version(labeled_set.policy)
    checked = [_checked(version, new) for new in examples]
    result = Added()
    with transaction.atomic():
        stored = dict(labeled_set.examples.filter(content_hash__in=[e.content_hash for e in checked])
                      .values_list("content_hash", "label"))
        fresh: dict[str, Example] = {}
        for example in checked:
            known = stored.get(example.content_hash) or (fresh[example.content_hash].label
                                                         if example.content_hash in fresh else None)
            if known is not None:
                result.duplicates += 1
                if known != example.label and example.source_row is not None:
                    result.relabel_conflicts.append(example.source_row)
                continue
            example.labeled_set = labeled_set
            fresh[example.content_hash] = example
        try:
            Example.objects.bulk_create(fresh.values(), batch_size=2000)
        except IntegrityError as exc:  # a concurrent import of the same rows
            raise SetError(f"another import into {labeled_set.name!r} ran at the same time; try again") from exc
        result.added = len(fresh)
        record(actor=actor, actor_name=actor_name, action="labeled_set.examples_added", obj=labeled_set,
               after={"added": result.added, "duplicates": result.duplicates, "source": source[:300],
                      "relabel_conflicts": result.relabel_conflicts[:50]})
    return result


def relabel(*, actor: Any, example: Example, label: str, actor_name: str = "") -> Example:
    version = scheme_version(example.labeled_set.policy)
    new_label, violation, category = meaning(version, label, column="label")
    if new_label == example.label:
        return example
    with transaction.atomic():
        before = {"label": example.label, "violation": example.violation, "category": example.category}
        example.label, example.violation, example.category = new_label, violation, category
        example.save(update_fields=["label", "violation", "category"])
        record(actor=actor, actor_name=actor_name, action="labeled_set.example_relabelled", obj=example,
               before=before, after={"label": new_label, "violation": violation, "category": category})
    return example


def delete_examples(*, actor: Any, labeled_set: LabeledSet, ids: Sequence[int], actor_name: str = "") -> int:
    """Delete examples of the set (with their results in past runs); how many."""
    with transaction.atomic():
        doomed = list(labeled_set.examples.filter(id__in=list(ids)))
        if not doomed:
            return 0
        entries: list[Entry] = [entry(e, "labeled_set.example_deleted",
                                      before={"label": e.label, "set": labeled_set.pk, "preview": e.preview(80)})
                                for e in doomed]
        labeled_set.examples.filter(id__in=[e.pk for e in doomed]).delete()
        record_many(actor=actor, actor_name=actor_name, object_type=Example, entries=entries)
    return len(doomed)


def delete_set(*, actor: Any, labeled_set: LabeledSet, actor_name: str = "") -> None:
    with transaction.atomic():
        before = {"policy": labeled_set.policy.slug, "name": labeled_set.name,
                  "examples": labeled_set.examples.count(), "runs": labeled_set.runs.count()}
        record(actor=actor, actor_name=actor_name, action="labeled_set.deleted", obj=labeled_set, before=before)
        labeled_set.delete()


def golden_set_from_reviews(*, actor: Any, policy: Policy, name: str, actor_name: str = "") -> tuple[LabeledSet, Added]:
    """A set (made, or topped up) from moderators' final decisions on this policy's reasoner verdicts:
    an approval keeps the model's label, an override gives the moderator's."""
    version = scheme_version(policy)
    decided = (Classification.objects.filter(policy_version__policy=policy, review_status=ReviewStatus.DECIDED)
               .select_related("item").order_by("id"))
    latest_review = {r.classification_id: r for r in Review.objects.filter(
        classification__in=decided, decision__in=["approve", "override"]).order_by("classification_id", "created_at")}
    new: list[NewExample] = []
    for classification in decided.iterator(chunk_size=2000):
        review = latest_review.get(classification.pk)
        if review is None:
            continue
        label = (review.label or review.category) if review.decision == "override" else classification.label
        if not label:
            continue
        try:
            meaning(version, label)
        except SetError:
            continue  # decided under an older scheme with labels this version no longer has
        item = classification.item
        new.append(NewExample(label=label, content=item.content, turns=item.turns, kind=item.kind))
    labeled_set = find_or_create_set(actor=actor, policy=policy, name=name, actor_name=actor_name,
                                     source="moderators' final decisions")
    return labeled_set, add_examples(actor=actor, labeled_set=labeled_set, examples=new, actor_name=actor_name,
                                     source="reviews")


def search(labeled_set: LabeledSet, query: str = "", label: str = "") -> Any:
    """The set's examples matching a text query and/or a label, in order."""
    examples = labeled_set.examples.all()
    if query:
        examples = examples.filter(Q(content__icontains=query) | Q(turns__icontains=query))
    if label:
        examples = examples.filter(label__iexact=label)
    return examples.order_by("id")
