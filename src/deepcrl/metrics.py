"""Metrics: their reduction inside an epoch, their columns in metrics.csv, and the scores read from them.

One module for every reader and writer of metrics (the trainer, `deepcrl eval`, the progress summary,
the benchmarks):

- `epoch_means`: per-step metrics of an epoch's SGD steps -> one value each (inside the jitted epoch);
- `metric_columns`: a row of metrics.csv from metrics of one seed or of N seeds side by side: the mean
  over seeds under the plain name, `NAME/se` its standard error, `NAME/seed<S>` each seed's value;
- `mean_and_se`: mean and standard error (std with ddof 1 over sqrt N) of values over seeds;
- `final_score`: evaluation metrics averaged over the last 5 evaluations (the paper's reported score).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

FINAL_SCORE_EVALS = 5  # evaluations averaged into a run's score (the paper's last-5)


def epoch_means(metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-epoch means of per-step metrics ([steps] each). An agent that updates its actor only on some
    steps (TD3) reports `actor/updated` (1.0 or 0.0); its actor metrics are averaged over the steps that
    updated."""
    updated = metrics.get("actor/updated")
    out = {}
    for name, values in metrics.items():
        if updated is not None and name.startswith("actor/") and name != "actor/updated":
            out[name] = jnp.sum(values * updated) / jnp.maximum(jnp.sum(updated), 1.0)
        else:
            out[name] = jnp.mean(values)
    return out


def mean_and_se(values: Sequence[float]) -> tuple[float, float]:
    """(mean, standard error of the mean) of values over seeds; the error is 0 for one value."""
    v = np.asarray(values, np.float64)
    if v.size < 2:
        return float(v.mean()), 0.0
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


def metric_columns(metrics: dict[str, Any], first_seed: int, num_seeds: int) -> dict[str, float]:
    """metrics.csv columns of one row. One seed: the values. N seeds (a leading axis of length N on each
    value): for each metric its mean over seeds under the plain name, the standard error of that mean as
    `NAME/se`, and every seed's value as `NAME/seed<S>` (S the seed itself)."""
    if num_seeds == 1:
        return {k: float(v) for k, v in metrics.items()}
    row = {}
    for k, v in metrics.items():
        v = np.asarray(v, np.float64)
        row[k], row[f"{k}/se"] = mean_and_se(v)
        for i in range(num_seeds):
            row[f"{k}/seed{first_seed + i}"] = float(v[i])
    return row


def final_score(history: list[dict[str, float]], last: int = FINAL_SCORE_EVALS) -> dict[str, float]:
    """Evaluation metrics (`eval/...` columns, and a learner's `learner/eval/...`) averaged over the last `last` evaluations."""
    rows = history[-last:]
    keys = [k for k in rows[-1] if k.startswith(("eval/", "learner/eval/"))]
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}
