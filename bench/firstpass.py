"""First-pass benchmark: scoring throughput on one CPU core, and how much traffic the first pass must
escalate to keep recall at or above 0.95 on the public spam set.

    python3 dev.py manage bench_firstpass        # or: .venv/bin/python bench/firstpass.py

Plain Python (no Django): it uses safeguard.firstpass only.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPAM_SET = ROOT / ".." / "shared" / "data" / "spam-policy" / "golden_dataset.csv"

# One core means one thread for the numeric libraries too (set before numpy loads them).
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from safeguard import firstpass  # noqa: E402 (after the thread settings and the path)

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


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(*, items: int = 200_000, batch: int = 1000, splits: int = 50,
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
    return {"items_per_s": rate, "single_p50_ms": latencies[len(latencies) // 2],
            "single_p99_ms": latencies[int(len(latencies) * 0.99)], **result}


if __name__ == "__main__":
    main()
