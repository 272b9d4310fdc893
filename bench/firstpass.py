"""First-pass benchmark: scoring throughput on one CPU core, how much traffic the first pass must
escalate to keep recall at or above 0.95 on the public spam set, and rankers and thresholds side by
side on every labelled set available (the spam set, each teen-safety set, any CSV given).

    python3 dev.py manage bench_firstpass [--sets a.csv b.csv]   # or: .venv/bin/python bench/firstpass.py [a.csv ...]

Plain Python (no Django): it uses safeguard.firstpass and safeguard.firstpass_thresholds only.
"""

from __future__ import annotations

import csv
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPAM_SET = ROOT / ".." / "shared" / "data" / "spam-policy" / "golden_dataset.csv"
TEEN_SETS = ROOT / ".." / "shared" / "data" / "teen-safety" / "datasets"
RECALL = 0.95
SITE_SAFE_BELOW = 0.1  # FIRST_PASS_SAFE_BELOW's default: what routing used before thresholds applied themselves

# One core means one thread for the numeric libraries too (set before numpy loads them).
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from safeguard import firstpass, firstpass_thresholds, intervals  # noqa: E402 (after the thread settings and the path)
from safeguard.labels import is_safe_label  # noqa: E402

FILLERS = ["", " Thanks!", " See you soon.", " Sent from my phone", " (reply STOP to opt out)", " :)",
           " Let me know by Friday.", " PS: the meeting moved to 3pm."]


def load_examples() -> list[firstpass.LabeledText]:
    if SPAM_SET.exists():
        return firstpass.read_labeled_csv(SPAM_SET)
    raise SystemExit(f"the public spam data set is missing ({SPAM_SET.resolve()})")


def traffic(examples: list[firstpass.LabeledText], n: int, seed: int = 0) -> list[str]:
    """`n` message-like texts: the set's examples with varied endings, so no two batches are alike."""
    rng = random.Random(seed)
    return [f"{rng.choice(examples).text}{rng.choice(FILLERS)} #{rng.randrange(10**6)}" for _ in range(n)]


def throughput(model: firstpass.Model, texts: list[str], batch: int) -> float:
    firstpass.score(model, texts[:batch])  # warm caches (power tables) before timing
    started = time.perf_counter()
    for begin in range(0, len(texts), batch):
        firstpass.score(model, texts[begin : begin + batch])
    return len(texts) / (time.perf_counter() - started)


def single_latencies_ms(model: firstpass.Model, texts: list[str]) -> list[float]:
    out = []
    for text in texts:
        started = time.perf_counter()
        firstpass.score(model, [text])
        out.append((time.perf_counter() - started) * 1000)
    return sorted(out)


def escalation(examples: list[firstpass.LabeledText], splits: int, recall: float = 0.95) -> dict[str, Any]:
    """Stratified 50/50 train/test splits. `oracle`: the test set's own threshold for the recall target
    (the least escalation possible); `tuned`: a threshold chosen by cross-validation on the training half,
    applied to the test half (what a deployment would see)."""
    from sklearn.model_selection import StratifiedShuffleSplit

    texts = [e.text for e in examples]
    labels = [e.violation for e in examples]
    oracle, tuned_share, tuned_recall = [], [], []
    splitter = StratifiedShuffleSplit(n_splits=splits, test_size=0.5, random_state=0)
    for seed, (train_idx, test_idx) in enumerate(splitter.split(texts, labels)):
        train_texts, train_labels = [texts[i] for i in train_idx], [labels[i] for i in train_idx]
        test_texts, test_labels = [texts[i] for i in test_idx], [labels[i] for i in test_idx]
        model = firstpass.train(train_texts, train_labels)
        scores = firstpass.score(model, test_texts)
        oracle.append(firstpass.escalated_share(scores, firstpass.threshold_for_recall(scores, test_labels, recall)))
        held_out = firstpass.out_of_fold_scores(train_texts, train_labels, folds=4, seed=seed)
        threshold = firstpass.threshold_for_recall(held_out, train_labels, recall)
        tuned_share.append(firstpass.escalated_share(scores, threshold))
        tuned_recall.append(firstpass.recall_at(scores, test_labels, threshold))
    pooled = []  # every item scored by models that did not see it: repeated 5-fold cross-validation
    for seed in range(10):
        scores = firstpass.out_of_fold_scores(texts, labels, folds=5, seed=seed)
        pooled.append(firstpass.escalated_share(scores, firstpass.threshold_for_recall(scores, labels, recall)))
    violations = sum(labels) / len(labels)
    return {
        "cv_escalated_mean": statistics.mean(pooled),
        "examples": len(texts),
        "violation_share": violations,
        "splits": splits,
        "oracle_escalated_mean": statistics.mean(oracle),
        "oracle_escalated_median": statistics.median(oracle),
        "tuned_escalated_mean": statistics.mean(tuned_share),
        "tuned_recall_mean": statistics.mean(tuned_recall),
        "tuned_recall_at_least_target": sum(r >= recall for r in tuned_recall) / splits,
    }


# --- rankers and thresholds side by side --------------------------------------------------------------

# A ranker fits on (texts, labels, each violation's category or "") and returns a scorer of texts.
Ranker = Callable[[list[str], np.ndarray, np.ndarray], Callable[[list[str]], np.ndarray]]


def _first_pass(c: float, weighting: str = "tf-idf") -> Ranker:
    def fit(texts: list[str], y: np.ndarray, categories: np.ndarray) -> Callable[[list[str]], np.ndarray]:
        model = firstpass.train(texts, y, c=c, weighting=weighting)
        return lambda batch: firstpass.score(model, batch)
    return fit


def _tfidf_reference(texts: list[str], y: np.ndarray, categories: np.ndarray) -> Callable[[list[str]], np.ndarray]:
    """The plain scikit-learn baseline the issue measured (about 10x slower to score: reference only)."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)
    classifier = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)
    classifier.fit(hstack([words.fit_transform(texts), chars.fit_transform(texts)]).tocsr(), y)
    def scorer(batch: list[str]) -> np.ndarray:
        return classifier.predict_proba(hstack([words.transform(batch), chars.transform(batch)]).tocsr())[:, 1]
    return scorer


MIN_HEAD_VIOLATIONS = 8  # a category with fewer training violations gets no head of its own


def _category_heads(texts: list[str], y: np.ndarray, categories: np.ndarray) -> Callable[[list[str]], np.ndarray]:
    """Per-category heads: besides the one violation-or-not model, one model per category that has
    enough violations, each trained on that category's violations against the non-violations only
    (the other categories' violations would teach it that they are fine). An item scores the highest
    of them all, so a category the shared model underrates is still escalated by its own head."""
    models = [firstpass.train(texts, y)]
    for name in sorted({str(c) for c in categories[y] if c}):
        members = y & (categories == name)
        if members.sum() < MIN_HEAD_VIOLATIONS:
            continue
        keep = np.flatnonzero(members | ~y)
        models.append(firstpass.train([texts[i] for i in keep], members[keep]))
    return lambda batch: np.max([firstpass.score(m, batch) for m in models], axis=0)


_ASSISTANT = "\nassistant: "


def _prompt_and_response_apart(texts: list[str], y: np.ndarray, categories: np.ndarray
                               ) -> Callable[[list[str]], np.ndarray]:
    """Completions: the response's n-grams as features of their own beside the whole text's, so "how to
    make a bomb" asked and the same words answered can weigh differently. Texts without a response
    (plain messages) get only the shared features."""
    from scipy.sparse import hstack
    from sklearn.linear_model import LogisticRegression

    featurizer = firstpass.Featurizer()

    def responses(batch: list[str]) -> list[str]:
        return [t.split(_ASSISTANT, 1)[1] if _ASSISTANT in t else "" for t in batch]

    idf_all, idf_response = featurizer.fit_idf(texts), featurizer.fit_idf(responses(texts))

    def matrix(batch: list[str]):
        return hstack([featurizer.matrix(batch, idf_all), featurizer.matrix(responses(batch), idf_response)]).tocsr()

    classifier = LogisticRegression(C=4.0, class_weight="balanced", solver="liblinear", max_iter=1000)
    classifier.fit(matrix(texts), y)
    return lambda batch: classifier.decision_function(matrix(batch))


OLD, NEW = "first pass before (counts)", "first pass now (tf-idf)"
RANKERS: dict[str, Ranker] = {
    OLD: _first_pass(4.0, weighting="counts"),
    NEW: _first_pass(4.0),
    "tf-idf, C=1": _first_pass(1.0),
    "TF-IDF + LR (reference)": _tfidf_reference,
    "per-category heads": _category_heads,
    "prompt, response apart": _prompt_and_response_apart,
}


def _applies(label: str, categories: np.ndarray, texts: list[str]) -> bool:
    """Whether a candidate means anything on a set: heads need categories, "apart" needs completions."""
    if label == "per-category heads":
        return len({c for c in categories if c}) >= 2
    if label == "prompt, response apart":
        return any(_ASSISTANT in t for t in texts)
    return True


def _labeled(text: str, label: str) -> firstpass.LabeledText:
    violation = not is_safe_label(label)
    return firstpass.LabeledText(text, violation, label, categories=(label,) if violation else ())


def teen_sets() -> dict[str, list[firstpass.LabeledText]]:
    """Each teen-safety file as two sets: its prompts (prompt labels) and its completions (the prompt
    and the model's response as a conversation, response labels). Row 1 is a disclaimer, row 2 the header.
    Then all four files' prompts and completions as one set whose categories are the four policies
    (DC, DR, GS, GV): the nearest thing here to a many-category moderation set."""
    out: dict[str, list[firstpass.LabeledText]] = {}
    pooled: list[firstpass.LabeledText] = []
    for path in sorted(TEEN_SETS.glob("*.csv")) if TEEN_SETS.exists() else []:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [[cell.strip() for cell in row] for row in csv.reader(handle)][2:]
        rows = [row for row in rows if len(row) >= 4]
        out[f"{path.stem} prompts"] = [_labeled(r[0], r[1]) for r in rows if r[0] and r[1]]
        out[f"{path.stem} completions"] = [_labeled(f"user: {r[0]}{_ASSISTANT}{r[2]}", r[3])
                                           for r in rows if r[0] and r[2] and r[3]]
        pooled += [firstpass.LabeledText(e.text, e.violation, e.label,
                                         categories=tuple(c.rstrip("0123456789") for c in e.categories))
                   for e in out[f"{path.stem} prompts"] + out[f"{path.stem} completions"]]
    if pooled:
        out["teen-safety, all four pooled"] = pooled
    return out


def _out_of_fold(fit: Ranker, texts: list[str], y: np.ndarray, categories: np.ndarray, seed: int,
                 folds: int = 5) -> np.ndarray:
    from sklearn.model_selection import StratifiedKFold

    out = np.empty(len(y))
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, y):
        scorer = fit([texts[i] for i in train_idx], y[train_idx], categories[train_idx])
        out[test_idx] = scorer([texts[i] for i in test_idx])
    return out


def _escalated_at_recall(scores: np.ndarray, y: np.ndarray) -> float:
    return firstpass.escalated_share(scores, firstpass.threshold_for_recall(scores, y, RECALL))


def _interval(values: Sequence[float]) -> tuple[float, float]:
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def _bootstrap(scores: np.ndarray, y: np.ndarray, draws: int, seed: int) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of AUC and escalation at recall 0.95, resampling items (stratified, so
    each draw has both classes)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(y), np.flatnonzero(~y)
    aucs, escalated = [], []
    for _ in range(draws):
        pick = np.concatenate([rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))])
        aucs.append(roc_auc_score(y[pick], scores[pick]))
        escalated.append(_escalated_at_recall(scores[pick], y[pick]))
    return {"auc": _interval(aucs), "escalated": _interval(escalated)}


def _paired_difference(before: np.ndarray, now: np.ndarray, y: np.ndarray, draws: int, seed: int
                       ) -> dict[str, tuple[float, float]]:
    """95% intervals of now minus before, in AUC and in the share escalated at recall 0.95, both
    rankers measured on the same resampled items each draw (paired: far narrower than comparing two
    separate intervals, and what says whether "now" really wins)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(y), np.flatnonzero(~y)
    aucs, escalated = [], []
    for _ in range(draws):
        pick = np.concatenate([rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))])
        aucs.append(roc_auc_score(y[pick], now[pick]) - roc_auc_score(y[pick], before[pick]))
        escalated.append(_escalated_at_recall(now[pick], y[pick]) - _escalated_at_recall(before[pick], y[pick]))
    return {"auc": _interval(aucs), "escalated": _interval(escalated)}


def _category_recall(scores: np.ndarray, y: np.ndarray, categories: np.ndarray, threshold: float) -> str:
    """Each category's recall at one threshold, with its violations count: "V2 0.79 of 24, H 0.98 of 60"."""
    parts = []
    for name in sorted({str(c) for c in categories[y] if c}):
        members = y & (categories == name)
        parts.append(f"{name} {np.mean(scores[members] >= threshold):.2f} of {int(members.sum())}")
    return ", ".join(parts)


def compare(name: str, examples: list[firstpass.LabeledText], *, repeats: int, draws: int,
            write: Callable[[str], Any]) -> dict[str, Any]:
    """Every ranker on one set (repeated 5-fold CV), the new first pass against the old with paired
    intervals, then the old routing (the old model, the site's default threshold) against the new (the
    new model, the threshold that applies itself by nested CV); on a set with categories, each
    category's recall at the overall recall-0.95 threshold."""
    from sklearn.metrics import roc_auc_score

    texts = [e.text for e in examples]
    y = np.asarray([e.violation for e in examples])
    # An item flagged in several categories counts under its first (the threshold report's categories).
    categories = np.asarray([e.categories[0] if e.violation and e.categories else "" for e in examples], dtype=object)
    write(f"\n{name}: {len(y)} items, {y.mean():.0%} violations")
    if min(int(y.sum()), int((~y).sum())) < 5:
        write("  too few of one class to cross-validate: skipped")
        return {}
    result: dict[str, Any] = {"items": len(y), "violation_share": float(y.mean())}
    by_category: dict[str, str] = {}
    first_runs: dict[str, np.ndarray] = {}
    for label, fit in RANKERS.items():
        if not _applies(label, categories, texts):
            continue
        runs = [_out_of_fold(fit, texts, y, categories, seed) for seed in range(repeats)]
        first_runs[label] = runs[0]
        auc = statistics.mean(roc_auc_score(y, s) for s in runs)
        escalated = statistics.mean(_escalated_at_recall(s, y) for s in runs)
        ci = _bootstrap(runs[0], y, draws, seed=1)
        result[label] = {"auc": auc, "escalated": escalated, **{f"{k}_ci": v for k, v in ci.items()}}
        write(f"  {label:<26} AUC {auc:.3f} [{ci['auc'][0]:.3f}, {ci['auc'][1]:.3f}]   escalated at recall "
              f"{RECALL}: {escalated:.1%} [{ci['escalated'][0]:.1%}, {ci['escalated'][1]:.1%}]")
        if categories.any() and label in (OLD, NEW):
            threshold = firstpass.threshold_for_recall(runs[0], y, RECALL)
            by_category[label] = _category_recall(runs[0], y, categories, threshold)
    before, now = result[OLD], result[NEW]
    paired = _paired_difference(first_runs[OLD], first_runs[NEW], y, draws, seed=2)
    fewer = 1 - now["escalated"] / before["escalated"] if before["escalated"] else 0.0
    result["now_minus_before"] = {"auc": now["auc"] - before["auc"],
                                  "escalated": now["escalated"] - before["escalated"], "fewer_escalations": fewer,
                                  **{f"{k}_ci": v for k, v in paired.items()}}
    write(f"  now against before: AUC {now['auc'] - before['auc']:+.3f} [{paired['auc'][0]:+.3f}, "
          f"{paired['auc'][1]:+.3f}], escalated {before['escalated']:.1%} -> {now['escalated']:.1%} "
          f"({f'{fewer:.0%} fewer' if fewer >= 0 else f'{-fewer:.0%} more'}; "
          f"difference [{paired['escalated'][0]:+.1%}, {paired['escalated'][1]:+.1%}], paired)")
    for label, recalls in by_category.items():
        write(f"  recall per category at recall {RECALL} overall, {label}: {recalls}")
    scores = _out_of_fold(RANKERS[OLD], texts, y, categories, seed=0)
    old_recall, old_escalated = firstpass.recall_at(scores, y, SITE_SAFE_BELOW), firstpass.escalated_share(
        scores, SITE_SAFE_BELOW)
    proposal = firstpass_thresholds.propose(texts, y, list(categories), aim=RECALL + 0.02)
    verdict = firstpass_thresholds.judge(proposal, target=RECALL, min_violations=100, category_floor=0.85,
                                         category_min_violations=20)
    low, high = intervals.wilson(proposal.caught, proposal.violations) or (0.0, 1.0)
    write(f"  routing before, {OLD} (close below {SITE_SAFE_BELOW}): held-out recall {old_recall:.3f}, escalated "
          f"{old_escalated:.1%}")
    write(f"  routing now, {NEW}, threshold chosen by nested CV (aim {RECALL + 0.02}): held-out recall "
          f"{proposal.held_out_recall:.3f} "
          f"[{low:.3f}, {high:.3f}], escalated {proposal.held_out_escalated:.1%}; "
          f"{'applied' if verdict.apply else 'not applied'}: {verdict.reason}")
    if proposal.categories:
        write("    held-out recall per category: " + ", ".join(
            f"{c.category} {c.recall:.2f} of {c.violations}" for c in proposal.categories))
    result["routing"] = {"before_recall": old_recall, "before_escalated": old_escalated,
                         "nested_recall": proposal.held_out_recall, "nested_recall_ci": (low, high),
                         "nested_escalated": proposal.held_out_escalated, "applied": verdict.apply,
                         "categories": {c.category: c.recall for c in proposal.categories}}
    return result


def read_set(path: Path, write: Callable[[str], Any]) -> list[firstpass.LabeledText]:
    """A labelled set given on the command line: CSV, JSON Lines or JSON, plain or gzipped (for example
    OpenAI's moderation evaluation set, samples-1680.jsonl.gz, as published). Rows without a label are
    skipped and counted."""
    skipped: list[int] = []
    examples = firstpass.read_labeled_file(path, on_skip=lambda line, why: skipped.append(line))
    if skipped:
        write(f"({path.name}: {len(skipped)} rows without a label skipped, the first on line {skipped[0]})")
    return examples


def quality(extra: Sequence[Path], *, repeats: int = 3, draws: int = 300,
            write: Callable[[str], Any] = print) -> dict[str, Any]:
    sets: dict[str, list[firstpass.LabeledText]] = {}
    if SPAM_SET.exists():
        sets["spam golden set"] = firstpass.read_labeled_csv(SPAM_SET)
    else:
        write(f"(the public spam set is missing: {SPAM_SET.resolve()})")
    sets.update(teen_sets())
    for path in extra:
        sets[Path(path).name] = read_set(Path(path), write)
    write(f"Rankers side by side: {repeats}x 5-fold CV (means), 95% bootstrap intervals over items ({draws} draws)")
    return {name: compare(name, examples, repeats=repeats, draws=draws, write=write) for name, examples in sets.items()}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(*, items: int = 200_000, batch: int = 1000, splits: int = 50, sets: Sequence[Path] = (),
         write: Callable[[str], Any] = print) -> dict[str, Any]:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    examples = load_examples()
    model = firstpass.train([e.text for e in examples], [e.violation for e in examples])
    texts = traffic(examples, items)
    mean_chars = sum(map(len, texts)) / len(texts)
    rate = throughput(model, texts, batch)
    latencies = single_latencies_ms(model, texts[:2000])
    write(f"CPU: {cpu_model()}, {os.cpu_count()} cores; scoring pinned to one core")
    write(f"Scoring: {rate:,.0f} items/s in batches of {batch} ({items:,} texts, {mean_chars:.0f} chars on average)"
          f" - target 10,000")
    write(f"One item at a time: p50 {latencies[len(latencies) // 2]:.3f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)]:.3f} ms - target under 1 ms")
    result = escalation(examples, splits)
    write(f"Spam set: {result['examples']} labelled items, {result['violation_share']:.0%} violations; "
          f"{splits} stratified 50/50 train/test splits")
    write(f"  escalated at recall >= 0.95 over out-of-fold scores of all items (10x 5-fold CV): "
          f"{result['cv_escalated_mean']:.1%} (the violations alone are {result['violation_share']:.0%})")
    write(f"  escalated at the test set's own recall-0.95 threshold: mean {result['oracle_escalated_mean']:.1%}, "
          f"median {result['oracle_escalated_median']:.1%}")
    write(f"  escalated with the threshold tuned on the training half: mean {result['tuned_escalated_mean']:.1%}, "
          f"test recall mean {result['tuned_recall_mean']:.3f} (>= 0.95 in "
          f"{result['tuned_recall_at_least_target']:.0%} of splits)")
    compared = quality(sets, write=write)
    return {"items_per_s": rate, "single_p50_ms": latencies[len(latencies) // 2],
            "single_p99_ms": latencies[int(len(latencies) * 0.99)], **result, "sets": compared}


if __name__ == "__main__":
    main(sets=[Path(arg) for arg in sys.argv[1:]])
