"""Every write to policies: each function is atomic, audited, and changes nothing when it refuses."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.roles import Role, has_role
from audit.writer import record
from policies_app import gates
from policies_app.models import (
    RULE_ID_RE,
    LabelScheme,
    OutputFormat,
    Policy,
    PolicyVersion,
    ReasoningEffort,
    VersionStatus,
    compute_content_hash,
)

MAX_POLICY_CHARS = 60_000  # ~15k tokens: far past the 400-600 that work best, still well inside the context
LABEL_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,40}$")
FIXED_LABELS = {LabelScheme.BINARY: ["0", "1"], LabelScheme.VALID_INVALID: ["VALID", "INVALID"]}


class PolicyError(ValidationError):
    """A refused policy change; `field` names the form field at fault, if any."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _snapshot(version: PolicyVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "status": version.status,
        "content_hash": version.content_hash,
        "label_scheme": version.label_scheme,
        "labels": version.labels,
        "output_format": version.output_format,
        "reasoning_effort": version.reasoning_effort,
        "change_note": version.change_note,
    }


def clean_labels(label_scheme: str, labels: list[str] | str | None) -> list[str]:
    """The label list a scheme allows: fixed for binary and VALID/INVALID, given for categories."""
    if label_scheme not in LabelScheme.values:
        raise PolicyError(f"Unknown label scheme {label_scheme!r}", "label_scheme")
    if label_scheme in FIXED_LABELS:
        return list(FIXED_LABELS[LabelScheme(label_scheme)])
    if isinstance(labels, str):
        labels = re.split(r"[\s,]+", labels)
    cleaned = list(dict.fromkeys(label.strip() for label in labels or [] if label.strip()))
    if len(cleaned) < 2:
        raise PolicyError("A category scheme needs at least two category codes, e.g. SP0, SP2, SP3", "labels")
    bad = [label for label in cleaned if not LABEL_RE.match(label)]
    if bad:
        raise PolicyError(f"Category codes may hold letters, digits, '.', '_' and '-': {', '.join(bad)}", "labels")
    return cleaned


def _clean_text(text: str) -> str:
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise PolicyError("The policy text is empty: write the policy the model should apply", "text")
    if len(text) > MAX_POLICY_CHARS:
        raise PolicyError(f"The policy text is longer than {MAX_POLICY_CHARS:,} characters", "text")
    return text


def _check_choices(output_format: str, reasoning_effort: str) -> None:
    if output_format not in OutputFormat.values:
        raise PolicyError(f"Unknown output format {output_format!r}", "output_format")
    if reasoning_effort not in ReasoningEffort.values:
        raise PolicyError(f"Unknown reasoning effort {reasoning_effort!r}", "reasoning_effort")


def _unique_slug(name: str) -> str:
    base = slugify(name)[:100] or "policy"
    slug, n = base, 2
    while Policy.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def create_policy(
    *,
    actor: Any,
    name: str,
    text: str,
    description: str = "",
    label_scheme: str = LabelScheme.BINARY,
    labels: list[str] | str | None = None,
    output_format: str = OutputFormat.JSON,
    reasoning_effort: str = ReasoningEffort.MEDIUM,
    change_note: str = "",
    slug: str = "",
) -> PolicyVersion:
    """A new policy with its first (draft) version."""
    name = (name or "").strip()
    if not name:
        raise PolicyError("Give the policy a name", "name")
    if len(name) > 120:
        raise PolicyError("Names are at most 120 characters", "name")
    if Policy.objects.filter(name__iexact=name).exists():
        raise PolicyError(f"A policy named {name!r} already exists", "name")
    text = _clean_text(text)
    labels = clean_labels(label_scheme, labels)
    _check_choices(output_format, reasoning_effort)
    policy = Policy.objects.create(
        name=name, slug=slug or _unique_slug(name), description=description.strip()[:300], created_by=_user(actor)
    )
    record(actor=actor, action="policy.created", obj=policy, after={"name": name, "slug": policy.slug})
    version = PolicyVersion.objects.create(
        policy=policy,
        number=1,
        text=text,
        label_scheme=label_scheme,
        labels=labels,
        output_format=output_format,
        reasoning_effort=reasoning_effort,
        change_note=change_note.strip()[:300] or "First version",
        author=_user(actor),
    )
    record(actor=actor, action="policy_version.created", obj=version, after=_snapshot(version))
    return version


@transaction.atomic
def save_version(
    *,
    actor: Any,
    policy: Policy,
    base_number: int,
    text: str,
    label_scheme: str,
    labels: list[str] | str | None,
    output_format: str,
    reasoning_effort: str,
    change_note: str = "",
) -> PolicyVersion:
    """An edit: always a new draft version, never an overwrite.

    `base_number` is the version the editor started from; if someone saved a newer one meanwhile, the
    edit is refused rather than silently dropping their change.
    """
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    latest = policy.versions.order_by("-number").first()
    if latest is None or latest.number != base_number:
        newer = latest.number if latest else "?"
        raise PolicyError(
            f"Version {newer} was saved after you started editing version {base_number}. "
            "Your changes were not saved: reload to see the newest text, then apply your edit again."
        )
    text = _clean_text(text)
    labels = clean_labels(label_scheme, labels)
    _check_choices(output_format, reasoning_effort)
    version = PolicyVersion(
        policy=policy,
        number=latest.number + 1,
        text=text,
        label_scheme=label_scheme,
        labels=labels,
        output_format=output_format,
        reasoning_effort=reasoning_effort,
        change_note=change_note.strip()[:300],
        based_on=latest,
        author=_user(actor),
    )
    if compute_content_hash(version) == latest.content_hash:
        raise PolicyError("Nothing changed since the version you started from: no new version was saved")
    version.save()
    record(actor=actor, action="policy_version.created", obj=version, after=_snapshot(version))
    return version


def _locked_version(policy: Policy, version: PolicyVersion) -> tuple[Policy, PolicyVersion]:
    if version.policy_id != policy.pk:
        raise PolicyError(f"Version {version} belongs to another policy than {policy}")
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    return policy, PolicyVersion.objects.get(pk=version.pk)


def _publish(actor: Any, policy: Policy, version: PolicyVersion, action: str) -> PolicyVersion:
    current = policy.versions.filter(status=VersionStatus.PUBLISHED).first()
    if current is not None:
        before = _snapshot(current)
        current.status = VersionStatus.RETIRED
        current.save(update_fields=["status"])
        record(actor=actor, action="policy_version.superseded", obj=current, before=before, after=_snapshot(current))
    before = _snapshot(version)
    version.status = VersionStatus.PUBLISHED
    version.published_at = timezone.now()
    version.save(update_fields=["status", "published_at"])
    record(actor=actor, action=action, obj=version, before=before, after=_snapshot(version))
    return version


@transaction.atomic
def publish_version(*, actor: Any, policy: Policy, version: PolicyVersion, override_reason: str = "") -> PolicyVersion:
    """Make `version` the one new items are classified against; the previous one is retired.

    Evidence that blocks (policies_app.gates: e.g. a lower recall on a required labelled set) refuses
    the publish, unless an admin gives `override_reason`, which is audited with what it overrode."""
    policy, version = _locked_version(policy, version)
    if version.status == VersionStatus.PUBLISHED:
        raise PolicyError(f"{version} is already published")
    blocking = [row for row in gates.evidence_for(version) if row.blocking]
    override_reason = " ".join(override_reason.split())
    if blocking:
        reasons = "; ".join(row.reason for row in blocking)
        if not override_reason:
            raise PolicyError(f"Publishing {version} is blocked: {reasons}. An admin can publish anyway, with a reason")
        if not has_role(actor, Role.ADMIN):
            raise PolicyError(f"Only an admin can publish {version} over what blocks it: {reasons}")
        record(actor=actor, action="policy_version.publish_gate_overridden", obj=version,
               after={"reason": override_reason[:500], "blocked_by": [row.reason for row in blocking]})
    return _publish(actor, policy, version, "policy_version.published")


@transaction.atomic
def rollback_to(*, actor: Any, policy: Policy, version: PolicyVersion) -> PolicyVersion:
    """Publish the content of an earlier version again, as a new version, so history stays linear."""
    policy, version = _locked_version(policy, version)
    latest = policy.versions.order_by("-number").first()
    published = policy.versions.filter(status=VersionStatus.PUBLISHED).first()
    if published is not None and published.content_hash == version.content_hash:
        raise PolicyError(f"{published} already has the content of version {version.number}")
    copy = PolicyVersion.objects.create(
        policy=policy,
        number=latest.number + 1,
        text=version.text,
        label_scheme=version.label_scheme,
        labels=version.labels,
        output_format=version.output_format,
        reasoning_effort=version.reasoning_effort,
        change_note=f"Rolled back to version {version.number}",
        based_on=version,
        author=_user(actor),
    )
    record(actor=actor, action="policy_version.created", obj=copy, after=_snapshot(copy))
    return _publish(actor, policy, copy, "policy_version.rolled_back")


@transaction.atomic
def retire_version(*, actor: Any, policy: Policy, version: PolicyVersion) -> PolicyVersion:
    """Take a published version out of use (the policy then classifies nothing), or abandon a draft."""
    policy, version = _locked_version(policy, version)
    if version.status == VersionStatus.RETIRED:
        raise PolicyError(f"{version} is already retired")
    before = _snapshot(version)
    version.status = VersionStatus.RETIRED
    version.save(update_fields=["status"])
    record(actor=actor, action="policy_version.retired", obj=version, before=before, after=_snapshot(version))
    return version


@transaction.atomic
def update_description(*, actor: Any, policy: Policy, description: str) -> Policy:
    """Change the one-line description. The name and slug stay: API clients choose policies by them."""
    description = (description or "").strip()
    if len(description) > 300:
        raise PolicyError("Descriptions are at most 300 characters", "description")
    policy = Policy.objects.select_for_update().get(pk=policy.pk)
    if description == policy.description:
        raise PolicyError("The description is unchanged: nothing to save", "description")
    before = {"description": policy.description}
    policy.description = description
    policy.save(update_fields=["description"])
    record(actor=actor, action="policy.updated", obj=policy, before=before, after={"description": description})
    return policy


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


__all__ = [
    "RULE_ID_RE",
    "PolicyError",
    "clean_labels",
    "create_policy",
    "publish_version",
    "retire_version",
    "rollback_to",
    "save_version",
    "update_description",
]
