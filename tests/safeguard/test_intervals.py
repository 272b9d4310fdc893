"""Wilson's score interval (safeguard.intervals), against published values and its closed forms."""

from __future__ import annotations

import math

import pytest

from safeguard.intervals import Z95, wilson


def test_it_matches_published_values():
    low, high = wilson(0, 10)
    assert low == 0 and round(high, 4) == 0.2775
    assert [round(x, 4) for x in wilson(5, 10)] == [0.2366, 0.7634]
    low, high = wilson(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == pytest.approx(1.0)


def test_it_matches_its_closed_forms():
    z2 = Z95**2
    assert wilson(0, 10)[1] == pytest.approx(z2 / (10 + z2))
    low, high = wilson(5, 10)
    assert (low + high) / 2 == pytest.approx(0.5)
    assert high - 0.5 == pytest.approx(Z95 * math.sqrt(0.25 / 10 + z2 / 400) / (1 + z2 / 10))


def test_nothing_is_known_without_trials():
    assert wilson(0, 0) is None
