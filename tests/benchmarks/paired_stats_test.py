"""benchmarks/paired_stats.py on known data."""

import numpy as np
import pytest

from tests.benchmarks.scripts import load

paired_stats = load("paired_stats")


def test_differences_mean_and_sign_count():
    result = paired_stats.paired_difference([0.74, 0.71, 0.75, 0.70], [0.70, 0.72, 0.70, 0.70])
    assert result["differences"] == pytest.approx([0.04, -0.01, 0.05, 0.0])
    assert result["mean"] == pytest.approx(0.02)
    assert (result["wins"], result["ties"], result["losses"]) == (2, 1, 1)
    assert result["n"] == 4 and result["resamples"] == 10000 and result["bootstrap_seed"] == 0


def test_interval_matches_a_direct_bootstrap_and_is_reproducible():
    a, b = [0.80, 0.78, 0.83, 0.79, 0.81], [0.77, 0.78, 0.79, 0.80, 0.76]
    result = paired_stats.paired_difference(a, b, resamples=2000, seed=5)
    differences = np.subtract(a, b)
    picks = np.random.default_rng(5).integers(0, 5, size=(2000, 5))
    means = differences[picks].mean(axis=1)
    assert result["ci95"] == pytest.approx([np.percentile(means, 2.5), np.percentile(means, 97.5)])
    assert result["ci95"][0] <= result["mean"] <= result["ci95"][1]
    assert paired_stats.paired_difference(a, b, resamples=2000, seed=5) == result


def test_constant_differences_give_a_point_interval():
    result = paired_stats.paired_difference([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert result["ci95"] == pytest.approx([0.1, 0.1])
    assert result["wins"] == 3


def test_all_positive_differences_give_an_interval_above_zero_and_one_seed_none():
    result = paired_stats.paired_difference([0.9, 0.8, 0.85, 0.95, 0.7], [0.8, 0.7, 0.8, 0.9, 0.6])
    assert result["ci95"][0] > 0
    assert paired_stats.paired_difference([0.7], [0.6])["ci95"] is None


def test_refuses_unpaired_input():
    with pytest.raises(ValueError, match="equally long, non-empty"):
        paired_stats.paired_difference([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="equally long, non-empty"):
        paired_stats.paired_difference([], [])
    with pytest.raises(ValueError, match="positive integer"):
        paired_stats.paired_difference([0.1], [0.2], resamples=0)
