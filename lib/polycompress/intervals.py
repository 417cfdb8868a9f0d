"""Paired bootstrap intervals for F1 differences over test sentences (scipy.stats.bootstrap).

Two models scored on the same test sentences give, per sentence, counts of correct, predicted
and gold mentions (:func:`polycompress.evaluation.sentence_counts`). Resampling *sentences*,
the same draw for both models (paired), and recomputing micro F1 from the summed counts gives
the spread of ``F1(b) - F1(a)`` that the choice of test sentences alone would cause.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap

N_RESAMPLES = 2000
CONFIDENCE = 0.95


def micro_f1(correct: np.ndarray, predicted: np.ndarray, gold: np.ndarray, axis: int = -1) -> np.ndarray:
    """Micro F1 from per-sentence counts summed along ``axis`` (0 where there is nothing to find)."""
    c, p, g = (np.sum(x, axis=axis) for x in (correct, predicted, gold))
    total = p + g
    return np.divide(2.0 * c, total, out=np.zeros(np.shape(total), dtype=float), where=total > 0)


@dataclass(frozen=True)
class Difference:
    """``F1(b) - F1(a)`` on the same sentences, with a percentile bootstrap interval."""

    f1_a: float
    f1_b: float
    difference: float
    low: float
    high: float
    n_sentences: int

    @property
    def verdict(self) -> str:
        """"higher" / "lower" when the interval excludes 0, else "no clear difference"."""
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return "no clear difference"


def paired_difference(a: np.ndarray, b: np.ndarray, n_resamples: int = N_RESAMPLES,
                      confidence: float = CONFIDENCE, seed: int = 0) -> Difference:
    """Interval for F1(b) - F1(a); ``a`` and ``b`` are (n_sentences, 3) count arrays of the
    same sentences in the same order."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"expected two (n, 3) count arrays of the same sentences, got {a.shape} and {b.shape}")
    observed = float(micro_f1(*b.T) - micro_f1(*a.T))

    def statistic(ca, pa, ga, cb, pb, gb, axis=-1):
        return micro_f1(cb, pb, gb, axis=axis) - micro_f1(ca, pa, ga, axis=axis)

    res = bootstrap((*a.T, *b.T), statistic, paired=True, vectorized=True, n_resamples=n_resamples,
                    confidence_level=confidence, method="percentile", random_state=np.random.default_rng(seed))
    low, high = res.confidence_interval
    return Difference(float(micro_f1(*a.T)), float(micro_f1(*b.T)), observed, float(low), float(high), len(a))


@dataclass(frozen=True)
class Level:
    """One model's F1 on one test set, with a percentile bootstrap interval over its sentences."""

    f1: float
    low: float
    high: float
    n_sentences: int

    def against(self, threshold: float) -> str:
        """"above" / "below" when the interval lies wholly above / below ``threshold``, else "unclear"."""
        if self.low > threshold:
            return "above"
        if self.high < threshold:
            return "below"
        return "unclear"


def f1_level(counts: np.ndarray, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE,
             seed: int = 0) -> Level:
    """Interval for one model's micro F1; ``counts`` is its (n_sentences, 3) count array."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != 3:
        raise ValueError(f"expected an (n, 3) count array, got {counts.shape}")
    res = bootstrap(tuple(counts.T), micro_f1, paired=True, vectorized=True, n_resamples=n_resamples,
                    confidence_level=confidence, method="percentile", random_state=np.random.default_rng(seed))
    low, high = res.confidence_interval
    return Level(float(micro_f1(*counts.T)), float(low), float(high), len(counts))
