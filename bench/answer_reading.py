"""How answers are read: parse-quality shares on the project's answer corpus, and the cost per answer.

    .venv/bin/python -m bench.answer_reading            # after `python3 dev.py test` (or `up`) made .venv
    .venv/bin/python -m bench.answer_reading --rounds 20

Plain Python, no database: it parses every answer of tests/safeguard/answer_corpus.py as a harmony
token completion (the path the vLLM and scripted engines take) and as an HTTP completion (final and
reasoning already split), and prints how many were read clean, recovered, conflicting or unparsable,
then the median cost of parse_completion per answer.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

from safeguard import Completion, parse_completion
from safeguard.verdict import PARSE_QUALITIES
from tests.safeguard.answer_corpus import CASES, POLICIES
from tests.safeguard.helpers import harmony_tokens


def token_completion(final: str, analysis: str) -> Completion:
    text = f"<|channel|>analysis<|message|>{analysis}<|end|><|start|>assistant<|channel|>final<|message|>"
    return Completion(key="k", token_ids=harmony_tokens(text + final + "<|return|>"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="passes over the corpus for the timing")
    args = parser.parse_args()

    work = [
        (token_completion(case.final, case.analysis or "Weighing the policy."), POLICIES[case.policy], case)
        for case in CASES
    ]
    qualities = Counter(parse_completion(completion, policy).quality for completion, policy, _ in work)
    expected = Counter(case.expect for case in CASES)
    print(f"corpus: {len(CASES)} answers; expected readings: {dict(sorted(expected.items()))}")
    for quality in PARSE_QUALITIES:
        share = qualities[quality] / len(CASES)
        print(f"  {quality:<12} {qualities[quality]:>4}  {share:6.1%}")

    http = [(Completion(key="k", text=c.final, reasoning=c.analysis), POLICIES[c.policy]) for c in CASES]
    for name, batch in (("token completion", [(c, p) for c, p, _ in work]), ("HTTP completion", http)):
        per_answer = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            for completion, policy in batch:
                parse_completion(completion, policy)
            per_answer.append((time.perf_counter() - started) / len(batch))
        median = statistics.median(per_answer) * 1e6
        print(f"{name}: median {median:.0f} µs per answer ({1e6 / median:,.0f} answers/s on one core)")


if __name__ == "__main__":
    main()
