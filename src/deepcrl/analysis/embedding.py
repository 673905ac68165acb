"""The paper's embedding plot (`deepcrl qmap --pca`): phi(s, a) along one evaluation episode, projected
on its first three principal components, with psi(g) of the episode's goal in the same projection.

CRL's critic scores f(s, a, g) = energy(phi(s, a), psi(g)) (minus the L2 distance by default), so phi and
psi live in one space: a critic that has learned the task moves phi(s_t, a_t) towards psi(g) as the
episode nears the goal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.errors import ConfigError
from deepcrl.evaluate import evaluation_policy, run_episodes


@dataclass
class Embedding:
    components: np.ndarray  # [T + 1, 3] phi(s_t, a_t) on the first three principal components (t = 0 .. T)
    goal: np.ndarray  # [3] psi(g) in the same projection
    explained: np.ndarray  # [3] fraction of phi's variance along the episode that each component holds
    distance: np.ndarray  # [T + 1] the distance to the goal at each step
    success: np.ndarray  # [T + 1] whether the goal was reached at each step
    goal_xy: np.ndarray  # the goal's position
    mean: np.ndarray  # [repr_dim] phi's mean along the episode
    directions: np.ndarray  # [3, repr_dim] the principal directions (components = (phi - mean) @ directions.T)
    label: str


def pca(x: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, the top-k principal directions [k, d], the fraction of variance of each, projections [n, k])."""
    mean = x.mean(axis=0)
    _, sv, vt = np.linalg.svd(x - mean, full_matrices=False)
    k = min(k, vt.shape[0])
    var = sv**2
    explained = var[:k] / max(var.sum(), 1e-12)
    return mean, vt[:k], explained, (x - mean) @ vt[:k].T


def trajectory_embedding(agent: Any, params: dict[str, Any], env: Any, key: jax.Array, label: str = "") -> Embedding:
    """phi along one deterministic evaluation episode of the agent (its exported parameters, one seed)."""
    if not hasattr(agent, "representations"):
        raise ConfigError(f"--pca needs CRL's representations phi(s, a) and psi(g); agent {agent.name!r} has a Q-network without them")
    policy = evaluation_policy(agent, params, 0)

    @jax.jit
    def run(key):
        def record(states):
            obs = jax.vmap(env.observation)(states)
            return {"obs": obs, "state": states.obs, "goal": states.goal, "distance": states.distance, "success": states.success}

        start, _, _, steps = run_episodes(env, policy, key, 1, record=record)
        first = record(start)
        traj = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b[:, 0]], axis=0), first, steps)  # [T + 1, ...]
        actions = agent.act(params["actor_params"], traj["obs"], deterministic=True)
        phi, psi = agent.representations(params["critic_params"], traj["state"], actions, traj["goal"])
        return phi, psi[0], traj["distance"], traj["success"], traj["goal"][0]

    phi, psi, distance, success, goal = (np.asarray(a, np.float64) for a in run(key))
    mean, directions, explained, components = pca(phi)
    return Embedding(components, (psi - mean) @ directions.T, explained, distance, success, goal[:2], mean, directions, label)


def embedding_of_run(run_dir: str | Path, run_seed: int | None = None, episode_seed: int = 0) -> Embedding:
    from deepcrl.analysis.value_map import load_run_agent

    env, agent, params, label = load_run_agent(run_dir, run_seed)
    return trajectory_embedding(agent, params, env, jax.random.PRNGKey(episode_seed), label)
