"""What the model is asked about: a policy and a piece of content.

These are plain frozen dataclasses so the Django side can build them from rows
without the engine knowing anything about models or querysets. They are
hashable, which lets the prompt renderer cache per-policy work keyed on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REASONING_EFFORTS = ("low", "medium", "high")
OUTPUT_FORMATS = ("binary", "label", "json")
LABEL_SCHEMES = ("binary", "valid_invalid", "categories")
CONTENT_KINDS = ("message", "completion", "conversation")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


@dataclass(frozen=True)
class PolicySpec:
    """One version of a platform-written policy, as the model reads it.

    `labels` are the policy's own label words or category codes, e.g.
    ("SP0", "SP2", "SP3") or ("VALID", "INVALID"); empty when the policy only
    asks for 0/1.
    """

    text: str
    reasoning_effort: str = "medium"
    output_format: str = "json"
    label_scheme: str = "binary"
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_choice("reasoning_effort", self.reasoning_effort, REASONING_EFFORTS)
        _check_choice("output_format", self.output_format, OUTPUT_FORMATS)
        _check_choice("label_scheme", self.label_scheme, LABEL_SCHEMES)
        if not isinstance(self.labels, tuple):
            # Callers often hold labels in a list (JSON fields); a tuple keeps the spec hashable.
            object.__setattr__(self, "labels", tuple(self.labels))


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation under review."""

    role: str
    content: str


@dataclass(frozen=True)
class Content:
    """The item under review: a single message, a model completion, or a conversation."""

    kind: str
    text: str = ""
    turns: tuple[Turn, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, CONTENT_KINDS)
        if not isinstance(self.turns, tuple):
            object.__setattr__(self, "turns", tuple(self.turns))
