"""Analyses of trained agents that read their parameters, never the trainer's internals (no plotting, no CLI).

- `topology`: a critic's values over a maze for one goal, and how well they follow the shortest-path
  distance rather than the straight line (Spearman correlations).
"""

from deepcrl.analysis.topology import ValueGrid, critic_fn, rankdata, spearman, topology_scores, value_grid

__all__ = ["ValueGrid", "critic_fn", "rankdata", "spearman", "topology_scores", "value_grid"]
