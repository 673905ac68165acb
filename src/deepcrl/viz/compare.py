"""The rule every verdict follows: the difference of two settings' scores with a 95% confidence interval.

A setting's score is one number per seed (each seed's mean of its last 5 evaluations, `Group.final`).
Two settings A and B are compared by the difference of their mean scores, mean(A) - mean(B), with a
two-sided 95% confidence interval from Welch's t (unequal variances, Welch-Satterthwaite degrees of
freedom): seeds are independent runs, A's seed s has nothing to do with B's seed s, so the samples are
unpaired. With 5 seeds a side a bootstrap over seeds would give intervals too narrow (it resamples only 5
values); Welch's interval is exact for normal scores and conservative enough for these.

The verdict of a claim "A beats B" (the paper's direction):

- **holds**: the interval lies above 0;
- **opposite**: the interval lies below 0 (B beats A);
- **inconclusive**: the interval contains 0;
- **too few seeds**: either side has fewer than MIN_SEEDS seeds (no verdict is drawn from it).

    d = difference(scores_a, scores_b)       # Difference(diff, low, high, ...)
    verdict(d)                               # "holds", "opposite", "inconclusive" or "too few seeds"
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95  # two-sided
MIN_SEEDS = 5  # seeds a side below which no verdict is drawn
VERDICTS = ("holds", "opposite", "inconclusive", "too few seeds")


@dataclass(frozen=True)
class Difference:
    """mean(A) - mean(B) with its Welch interval, and what it was computed from."""

    mean_a: float
    se_a: float  # standard error of A's mean (sample standard deviation / sqrt(n))
    n_a: int
    mean_b: float
    se_b: float
    n_b: int
    diff: float  # mean_a - mean_b
    low: float  # the interval's ends
    high: float
    df: float  # Welch-Satterthwaite degrees of freedom (inf when both sides have no spread)

    def text(self, digits: int = 2) -> str:
        """'+0.78 [+0.55, +1.01]': the difference and its interval, signed."""
        return f"{self.diff:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    n = len(values)
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / math.sqrt(n)) if n > 1 else 0.0
    return mean, se


def difference(a, b, confidence: float = CONFIDENCE) -> Difference:
    """mean(a) - mean(b) with a two-sided Welch t interval at `confidence`; `a`, `b`: per-seed scores.

    Each side needs at least 2 values (a standard error). Two sides without spread give a zero-width
    interval at the difference.
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a confidence interval needs at least 2 seeds a side, got {len(a)} and {len(b)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} is not allowed; it must lie strictly between 0 and 1")
    mean_a, se_a = _mean_se(a)
    mean_b, se_b = _mean_se(b)
    var = se_a**2 + se_b**2
    diff = mean_a - mean_b
    if var == 0.0:
        return Difference(mean_a, se_a, len(a), mean_b, se_b, len(b), diff, diff, diff, math.inf)
    df = var**2 / (se_a**4 / (len(a) - 1) + se_b**4 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * math.sqrt(var)
    return Difference(mean_a, se_a, len(a), mean_b, se_b, len(b), diff, diff - half, diff + half, df)


def verdict(d: Difference, min_seeds: int = MIN_SEEDS) -> str:
    """The verdict on "A beats B" that the interval of `d` gives (see the module docstring)."""
    if min(d.n_a, d.n_b) < min_seeds:
        return "too few seeds"
    if d.low > 0:
        return "holds"
    if d.high < 0:
        return "opposite"
    return "inconclusive"


__all__ = ["CONFIDENCE", "Difference", "MIN_SEEDS", "VERDICTS", "difference", "verdict"]
