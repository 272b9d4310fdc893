"""The transparency report (DSA Art. 15 and 24): for a period, the decisions taken (by policy, category,
action, DSA ground, notice source and how far they were automated), the median time from an item's
arrival to its decision, the complaints received and decided, and an error indicator of the automated
decisions. Every figure is an aggregate the database computes (GROUP BY, percentile_cont); nothing here
loops over rows.

A decision is an enforcement Action whose `decided_at` falls in the period (every final verdict gets
one: a moderator's decision, or the model's where no person decided), so every breakdown of the
decisions adds up to the same total.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from console.models import Item, Review
from enforcement.models import (
    Action,
    ActionType,
    Appeal,
    AutomatedDecision,
    DecisionGround,
    SourceType,
    Statement,
)
from enforcement.sources import SOURCE_ALIASES
from policies_app.models import Policy, PolicyVersion
from safeguard.intervals import wilson

# The breakdowns of the decisions, in the order the page shows them: (key, title).
DIMENSIONS = (
    ("automation", "How far the decision was automated"),
    ("policy", "Policy"),
    ("category", "Category decided (policy: code)"),
    ("action", "Action taken"),
    ("ground", "DSA ground of the restrictions"),
    ("source", "Source of the information"),
    ("tdb_category", "Transparency Database category of the restrictions"),
)
NO_RESTRICTION = "none"
# What each figure means: shown on the page and carried in the JSON download, so the two never differ.
DEFINITIONS = {
    "decision": "One verdict made final for one policy version, by a moderator or, where no person had to "
                "look, by the model (the first pass's confident closures, the reasoner's verdicts that need no "
                "review), counted on the day it was made. Every breakdown counts the same decisions.",
    "median_arrival_to_decision_s": "The median time from the item's arrival to the decision, in seconds.",
    "automation": "The Transparency Database's values: fully automated (no person decided), partially (a "
                  "moderator approved the model's verdict, or made an automated decision restrict), not "
                  "automated (a moderator overrode the model).",
    "source": "The item's metadata source_type: own voluntary initiative unless the platform said it came "
              "from a notice (Article 16), a trusted flagger or another notification.",
    "appeals": "Complaints received in the period, and complaints decided in it whenever they were received; "
               "the median time runs from receipt to decision.",
    "overridden_by_moderators": "Of the model's verdicts a moderator reviewed in the period (approved or "
                                "overridden; escalations are not yet a decision), the share overridden. These "
                                "are the verdicts the model sent to people (violations, unsure or unreadable "
                                "answers, quality-check samples), so it indicates the model's error rate, it "
                                "does not measure it over every automated decision.",
    "automated_reversed_on_appeal": "Of the complaints decided in the period against decisions no person made, "
                                    "the share reversed.",
    "combined": "The errors of both indicators over everything checked either way.",
    "ci95": "Wilson's score interval at 95%: with few checks it is wide; it says how far the true rate may be "
            "from the one measured.",
}
LABELS: dict[str, dict[str, str]] = {
    "automation": dict(AutomatedDecision.choices),
    "action": dict(ActionType.choices),
    "ground": {**dict(DecisionGround.choices), NO_RESTRICTION: "No restriction (action: none)"},
    "source": dict(SourceType.choices),
    "tdb_category": {NO_RESTRICTION: "No restriction (action: none)"},
}

# One scan of the period's actions, every breakdown at once (GROUPING SETS); `GROUPING(...)` tells
# which breakdown a row belongs to. A decision's automation is its statement's where it has one (a
# moderator who made an automated decision restrict made it partially automated), else who decided it:
# no person (fully), a moderator approving the model's verdict (partially), overriding it (not).
_DECISIONS_SQL = """
WITH d AS (
    SELECT COALESCE(CASE WHEN s.withdrawn_at IS NULL THEN s.automated_decision END,
                    CASE WHEN a.review_id IS NULL THEN 'fully' WHEN r.decision = 'approve' THEN 'partially'
                         ELSE 'not_automated' END) AS automation,
           p.name AS policy,
           p.name || ': ' || COALESCE(NULLIF(a.decided_code, ''), '(none)') AS category,
           a.action,
           CASE WHEN a.action = 'none' THEN 'none' ELSE COALESCE(s.decision_ground, 'incompatible_content') END
               AS ground,
           COALESCE(%(sources)s::jsonb ->> btrim(CASE WHEN jsonb_typeof(i.metadata) = 'object'
                                                      THEN i.metadata ->> 'source_type' END), 'voluntary') AS source,
           CASE WHEN a.action = 'none' THEN 'none' ELSE COALESCE(s.category, '(no statement)') END AS tdb_category,
           extract(epoch FROM a.decided_at - i.created_at) AS wait_s
    FROM {a} AS a
    JOIN {i} AS i ON i.id = a.item_id
    JOIN {pv} AS pv ON pv.id = a.policy_version_id
    JOIN {p} AS p ON p.id = pv.policy_id
    LEFT JOIN {r} AS r ON r.id = a.review_id
    LEFT JOIN {s} AS s ON s.action_id = a.id
    WHERE a.decided_at >= %(start)s AND a.decided_at < %(end)s)
SELECT GROUPING(automation), GROUPING(policy), GROUPING(category), GROUPING(action), GROUPING(ground),
       GROUPING(source), GROUPING(tdb_category),
       automation, policy, category, action, ground, source, tdb_category,
       count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_s)
FROM d
GROUP BY GROUPING SETS ((), (automation), (policy), (category), (action), (ground), (source), (tdb_category))
"""

# Complaints received in the period, and those decided in it (a complaint received before the period
# and decided in it counts among the decided). "Automated": against a decision no person made, as the
# appeal recorded when it was filed (a reversal makes a person the action's decider afterwards).
_APPEALS_SQL = """
SELECT count(*) FILTER (WHERE received),
       count(*) FILTER (WHERE received AND ap.status = 'open'),
       count(*) FILTER (WHERE decided),
       count(*) FILTER (WHERE decided AND ap.status = 'upheld'),
       count(*) FILTER (WHERE decided AND ap.status = 'reversed'),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ap.decided_at - ap.received_at))
           FILTER (WHERE decided),
       count(*) FILTER (WHERE decided AND ap.original_reviewer_id IS NULL),
       count(*) FILTER (WHERE decided AND ap.original_reviewer_id IS NULL AND ap.status = 'reversed')
FROM (SELECT *, received_at >= %(start)s AND received_at < %(end)s AS received,
             decided_at IS NOT NULL AND decided_at >= %(start)s AND decided_at < %(end)s AS decided
      FROM {ap}
      WHERE (received_at >= %(start)s AND received_at < %(end)s)
         OR (decided_at >= %(start)s AND decided_at < %(end)s)) AS ap
"""

# Moderators' reviews of model verdicts in the period: approved (the model was right) or overridden.
_REVIEWS_SQL = """
SELECT count(*) FILTER (WHERE decision = 'approve'), count(*) FILTER (WHERE decision = 'override')
FROM {r} WHERE created_at >= %(start)s AND created_at < %(end)s
"""

_TABLES = {"{a}": Action._meta.db_table, "{i}": Item._meta.db_table, "{pv}": PolicyVersion._meta.db_table,
           "{p}": Policy._meta.db_table, "{r}": Review._meta.db_table, "{s}": Statement._meta.db_table,
           "{ap}": Appeal._meta.db_table}


def _sql(template: str) -> str:
    for name, table in _TABLES.items():
        template = template.replace(name, table)
    return template


DECISIONS_SQL, APPEALS_SQL, REVIEWS_SQL = _sql(_DECISIONS_SQL), _sql(_APPEALS_SQL), _sql(_REVIEWS_SQL)


@dataclass(frozen=True, slots=True)
class Rate:
    """A share with its counts and 95% interval: `errors` of `total`."""

    errors: int
    total: int

    @property
    def share(self) -> float | None:
        return self.errors / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.errors, self.total)

    def as_dict(self) -> dict[str, Any]:
        low_high = self.interval
        return {"errors": self.errors, "total": self.total, "share": self.share,
                "ci95": list(low_high) if low_high else None}


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    label: str
    count: int
    median_s: float | None


@dataclass(slots=True)
class Report:
    since: date
    until: date
    decisions: int = 0
    median_s: float | None = None
    breakdowns: dict[str, list[Row]] = field(default_factory=dict)
    appeals: dict[str, Any] = field(default_factory=dict)
    overrides: Rate = Rate(0, 0)
    reversals: Rate = Rate(0, 0)

    @property
    def combined(self) -> Rate:
        """Both signals of an automated mistake together: verdicts people overrode, and automated
        decisions reversed on appeal, over every verdict checked either way."""
        return Rate(self.overrides.errors + self.reversals.errors, self.overrides.total + self.reversals.total)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (the JSON download; the CSV is written from it)."""
        return {
            "period": {"since": self.since.isoformat(), "until": self.until.isoformat(),
                       "time_zone": timezone.get_current_timezone_name()},
            "decisions": {"total": self.decisions, "median_arrival_to_decision_s": self.median_s,
                          **{key: [{"key": r.key, "label": r.label, "count": r.count, "median_arrival_to_decision_s":
                                    r.median_s} for r in rows] for key, rows in self.breakdowns.items()}},
            "appeals": self.appeals,
            "accuracy": {"overridden_by_moderators": self.overrides.as_dict(),
                         "automated_reversed_on_appeal": self.reversals.as_dict(),
                         "combined": self.combined.as_dict()},
            "definitions": DEFINITIONS,
        }


def presets(today: date) -> list[tuple[str, date, date]]:
    """The periods a compliance lead usually reports on: (label, since, until)."""
    half = date(today.year, 1 if today.month <= 6 else 7, 1)
    previous_half = date(half.year - 1, 7, 1) if half.month == 1 else date(half.year, 1, 1)
    return [
        ("Last 30 days", today - timedelta(days=29), today),
        ("This half-year so far", half, today),
        ("Previous half-year", previous_half, half - timedelta(days=1)),
        ("This year so far", date(today.year, 1, 1), today),
        ("Previous year", date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
    ]


def duration_text(seconds: float | None) -> str:
    """A median time as people read it: "45 s", "12 min", "3.5 h", "2.1 days"."""
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def bounds(since: date, until: date) -> tuple[datetime, datetime]:
    """The period as instants: from the start of `since` to the end of `until`, in the site's time zone."""
    zone = timezone.get_current_timezone()
    return (datetime.combine(since, time.min, tzinfo=zone),
            datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone))


def build(since: date, until: date) -> Report:
    """The report for `since` to `until`, both days included."""
    start, end = bounds(since, until)
    params = {"start": start, "end": end,
              "sources": json.dumps({key: str(value) for key, value in SOURCE_ALIASES.items()})}
    report = Report(since=since, until=until, breakdowns={key: [] for key, _ in DIMENSIONS})
    names = [key for key, _ in DIMENSIONS]
    with connection.cursor() as cursor:
        cursor.execute(DECISIONS_SQL, params)
        for row in cursor.fetchall():
            flags, keys, (count, median) = row[:7], row[7:14], row[14:]
            median = float(median) if median is not None else None
            grouped = [name for name, flag in zip(names, flags, strict=True) if not flag]
            if not grouped:
                report.decisions, report.median_s = count, median
                continue
            [name] = grouped
            key = str(keys[names.index(name)])
            report.breakdowns[name].append(Row(key, LABELS.get(name, {}).get(key, key), count, median))
        cursor.execute(APPEALS_SQL, params)
        received, still_open, decided, upheld, reversed_, median, automated, automated_reversed = cursor.fetchone()
        cursor.execute(REVIEWS_SQL, params)
        approved, overridden = cursor.fetchone()
    for rows in report.breakdowns.values():
        rows.sort(key=lambda r: (-r.count, r.key))
    report.appeals = {"received": received, "received_still_open": still_open, "decided": decided,
                      "upheld": upheld, "reversed": reversed_,
                      "median_received_to_decided_s": float(median) if median is not None else None}
    report.overrides = Rate(overridden, approved + overridden)
    report.reversals = Rate(automated_reversed, automated)
    return report


def csv_rows(report: Report) -> list[list[Any]]:
    """The report as CSV rows (section, key, label, value, median), the same figures as the page and JSON."""
    data = report.as_dict()
    rows: list[list[Any]] = [["section", "key", "label", "value", "median_arrival_to_decision_s"],
                             ["period", "since", data["period"]["since"], "", ""],
                             ["period", "until", data["period"]["until"], "", ""],
                             ["decisions", "total", "All decisions", report.decisions, report.median_s]]
    for key, _ in DIMENSIONS:
        rows += [[f"decisions_by_{key}", r.key, r.label, r.count, r.median_s] for r in report.breakdowns[key]]
    rows += [["appeals", name, name.replace("_", " "), value, ""] for name, value in data["appeals"].items()]
    for name, rate in data["accuracy"].items():
        low_high = rate["ci95"] or ["", ""]
        rows += [[f"accuracy_{name}", "errors", "errors", rate["errors"], ""],
                 [f"accuracy_{name}", "total", "checked", rate["total"], ""],
                 [f"accuracy_{name}", "share", "share", "" if rate["share"] is None else rate["share"], ""],
                 [f"accuracy_{name}", "ci95_low", "95% interval, low", low_high[0], ""],
                 [f"accuracy_{name}", "ci95_high", "95% interval, high", low_high[1], ""]]
    return rows
