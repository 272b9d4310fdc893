"""`manage.py evaluate <policy> <set>`: run a policy version over a labelled set through the reasoner, wait
for it, and print its metrics (one JSON object with --json, for a platform's CI pipeline).

The run goes through the workers' evaluation lane like a run started from the page; with --inline this
process works that lane itself with the configured engine, so no worker needs to be running.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from evaluations import runs
from evaluations.compare import CompareError, compare_runs
from evaluations.models import EvaluationRun, LabeledSet, RunKind, RunStatus
from evaluations.multipolicy import MultiPolicyError, multi_policy_accuracy
from policies_app.models import Policy, PolicyVersion
from reasoner.batch import EVALUATION
from reasoner.engine import NO_ENGINE_MESSAGE, get_engine
from reasoner.worker import Worker
from safeguard import EngineError

POLL_S = 0.5
HEADLINE = ("examples", "accuracy", "precision", "recall", "f1", "unparsable")


class Command(BaseCommand):
    help = "Run a policy version over a labelled set through the reasoner and print its metrics"

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        # `--version N` names a policy version here; Django's own --version (its release) gives way.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("policy", help="Policy slug")
        parser.add_argument("set", help="Name (or id) of one of the policy's labelled sets")
        parser.add_argument("--version", type=int, help="Version number (default: the newest)")
        parser.add_argument("--compare", type=int, metavar="M",
                            help="Also measure version M on the same set (reusing a finished run of it) and compare")
        parser.add_argument("--with-runs", type=int, nargs="+", metavar="RUN", default=[],
                            help="Runs of other policies over sets with the same content: also report the "
                                 "multi-policy exact-match accuracy of all of them with this run")
        parser.add_argument("--json", action="store_true", help="Print one JSON object")
        parser.add_argument("--inline", action="store_true",
                            help="Work the evaluation lane in this process instead of waiting for a worker")
        parser.add_argument("--timeout", type=float, default=0, help="Give up after this many seconds (0: never)")

    def handle(self, *args: Any, **options: Any) -> None:
        policy = Policy.objects.filter(slug=options["policy"]).first()
        if policy is None:
            raise CommandError(f"No policy with slug {options['policy']!r}")
        labeled_set = _find_set(policy, options["set"])
        version = _find_version(policy, options["version"])
        self.deadline = time.monotonic() + options["timeout"] if options["timeout"] else None
        self.inline = _inline_worker() if options["inline"] else None
        self.quiet = options["json"]
        baseline = None
        if options["compare"] is not None:
            baseline = self._measure(labeled_set, _find_version(policy, options["compare"]), reuse=True)
        run = self._measure(labeled_set, version, reuse=False)
        report = {"run": run.pk, "policy": policy.slug, "version": version.number, "set": labeled_set.name,
                  "status": run.status, **{key: run.metrics.get(key) for key in HEADLINE},
                  "metrics": run.metrics}
        if baseline is not None:
            report["compare"] = _comparison(baseline, run)
        if options["with_runs"]:
            others = list(EvaluationRun.objects.filter(pk__in=options["with_runs"]).select_related(
                "policy_version__policy"))
            missing = set(options["with_runs"]) - {r.pk for r in others}
            if missing:
                raise CommandError(f"No run #{', #'.join(str(pk) for pk in sorted(missing))}")
            try:
                report["multi_policy"] = multi_policy_accuracy([run, *others])
            except MultiPolicyError as exc:
                raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(report, sort_keys=True))
        else:
            self._print(report)
        if run.status != RunStatus.DONE:
            raise CommandError(f"Run #{run.pk} ended {run.status}")

    def _measure(self, labeled_set: LabeledSet, version: PolicyVersion, *, reuse: bool) -> EvaluationRun:
        if reuse:
            earlier = _finished_run(labeled_set, version)
            if earlier is not None:
                return earlier
        try:
            run = runs.start_run(actor=None, actor_name="system:manage.py evaluate", labeled_set=labeled_set,
                                 version=version)
        except runs.RunError as exc:
            raise CommandError(str(exc)) from exc
        if not self.quiet:
            self.stderr.write(f"Run #{run.pk}: {version} over {run.total} examples of {labeled_set.name!r}")
        return self._wait(run)

    def _wait(self, run: EvaluationRun) -> EvaluationRun:
        while True:
            if self.inline is not None:
                self.inline.serve(burst=True)
            run.refresh_from_db()
            state = runs.progress(run)
            self._bar(state)
            if run.status != RunStatus.RUNNING:
                if not self.quiet and sys.stderr.isatty():
                    sys.stderr.write("\n")
                return run
            if self.deadline is not None and time.monotonic() > self.deadline:
                runs.cancel_run(actor=None, actor_name="system:manage.py evaluate", run=run)
                raise CommandError(f"Run #{run.pk} did not finish in time ({state['settled']} of {state['total']}); "
                                   "cancelled. Is a reasoner worker running? (or pass --inline)")
            time.sleep(POLL_S)

    def _bar(self, state: dict[str, Any]) -> None:
        if self.quiet or not sys.stderr.isatty():
            return
        width = 30
        filled = int(width * state["percent"] / 100)
        eta = f", {state['eta_s']:.0f} s left" if state["eta_s"] is not None else ""
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {state['settled']}/{state['total']}"
                         f" {state['percent']:.0f}%{eta}   ")
        sys.stderr.flush()

    def _print(self, report: dict[str, Any]) -> None:
        metrics = report["metrics"]
        intervals = metrics.get("intervals") or {}
        self.stdout.write(f"Run #{report['run']}: {report['policy']} v{report['version']} on {report['set']!r} "
                          f"({report['status']})")
        self.stdout.write(f"  examples {metrics.get('examples')}, with a verdict {metrics.get('answered')}, "
                          f"without {metrics.get('unanswered')}")
        for key in ("accuracy", "precision", "recall", "f1"):
            value, interval = metrics.get(key), intervals.get(key)
            shown = "n/a" if value is None else f"{value:.3f}"
            if interval:
                shown += f"  (95% CI {interval[0]:.3f}-{interval[1]:.3f})"
            self.stdout.write(f"  {key:<10} {shown}")
        multi = report.get("multi_policy")
        if multi:
            shown = "n/a" if multi["exact_match"] is None else f"{multi['exact_match']:.3f}"
            self.stdout.write(f"  multi-policy exact match {shown} over {multi['examples']} examples labelled for "
                              f"{len(multi['runs'])} policies")
        compare = report.get("compare")
        if compare:
            self.stdout.write(f"  against v{compare['baseline_version']} (run #{compare['baseline_run']}): "
                              f"{compare['flips']} flipped ({compare['wrong_to_right']} wrong to right, "
                              f"{compare['right_to_wrong']} right to wrong)")
            self.stdout.write(f"  {compare['verdict']}")


def _find_set(policy: Policy, name: str) -> LabeledSet:
    found = policy.labeled_sets.filter(name__iexact=name).first()
    if found is None and name.isdigit():
        found = policy.labeled_sets.filter(pk=int(name)).first()
    if found is None:
        names = ", ".join(repr(s) for s in policy.labeled_sets.values_list("name", flat=True)) or "none yet"
        raise CommandError(f"{policy} has no labelled set {name!r} (its sets: {names})")
    return found


def _find_version(policy: Policy, number: int | None) -> PolicyVersion:
    version = policy.versions.filter(number=number).first() if number else policy.latest_version()
    if version is None:
        raise CommandError(f"{policy} has no version {number}" if number else f"{policy} has no version yet")
    return version


def _finished_run(labeled_set: LabeledSet, version: PolicyVersion) -> EvaluationRun | None:
    """The newest finished run of the version over the set as it is now (none added since, none missing)."""
    run = (EvaluationRun.objects.filter(kind=RunKind.LABELED, labeled_set=labeled_set, policy_version=version,
                                        status=RunStatus.DONE).order_by("-created_at").first())
    if run is None or run.total != labeled_set.examples.count():
        return None
    if labeled_set.examples.filter(created_at__gt=run.created_at).exists():
        return None
    return run


def _comparison(baseline: EvaluationRun, run: EvaluationRun) -> dict[str, Any]:
    try:
        c = compare_runs(baseline, run)
    except CompareError as exc:
        raise CommandError(str(exc)) from exc
    return {"baseline_run": baseline.pk, "baseline_version": baseline.policy_version.number,
            "only_baseline_right": c.counts["only_a_right"], "only_new_right": c.counts["only_b_right"],
            "flips": len(c.flips), "right_to_wrong": c.right_to_wrong, "wrong_to_right": c.wrong_to_right,
            "p_value": c.p_value, "significant": c.significant, "verdict": c.verdict, "deltas": c.deltas}


def _inline_worker() -> Worker:
    try:
        engine = get_engine()
    except (ImproperlyConfigured, EngineError, ValueError) as exc:
        raise CommandError(f"The model engine could not be loaded: {exc}") from exc
    if engine is None:
        raise CommandError(NO_ENGINE_MESSAGE)
    return Worker(engine, "evaluate-inline", lanes=(EVALUATION,))
