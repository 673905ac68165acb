"""The topology measure (analysis/topology.py) and multi-sample action selection (best of K by the critic)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from deepcrl.agents.crl import CRL, CRLConfig
from deepcrl.analysis import rankdata, spearman, topology_scores, value_grid
from deepcrl.envs.layouts import BUILTIN_LAYOUTS, parse_layout

LONG_U = parse_layout(
    """
r.......
#######.
G.......
""",
    "long_u",
)


def _geodesic_critic(layout):
    def critic(positions, goal):
        goal_cell = (int(goal[1]), int(goal[0]))
        dist = layout.geodesic_distances([goal_cell])
        cells = np.floor(positions[:, ::-1]).astype(int)
        return -dist[cells[:, 0], cells[:, 1]].astype(np.float64)

    return critic


def _euclidean_critic(positions, goal):
    return -np.linalg.norm(positions - goal[None], axis=-1)


@pytest.mark.parametrize("layout", [LONG_U, BUILTIN_LAYOUTS["u_maze"], BUILTIN_LAYOUTS["big_maze"]], ids=lambda layout: layout.name)
def test_topology_is_one_for_minus_the_path_distance_and_lower_for_the_straight_line(layout):
    goal = np.array(layout.eval_goal_cells[0][::-1], np.float64) + 0.5
    geo = topology_scores(value_grid(_geodesic_critic(layout), layout, goal))
    euc = topology_scores(value_grid(_euclidean_critic, layout, goal))
    assert geo["spearman_geodesic"] == pytest.approx(1.0)
    assert euc["spearman_euclidean"] == pytest.approx(1.0)
    assert euc["spearman_geodesic"] < 0.95  # walls make the straight line a poor guide
    assert geo["topology_gap"] > 0 > euc["topology_gap"]


def test_long_u_straight_line_critic_ranks_the_far_corridor_wrongly():
    goal = np.array([0.5, 2.5])  # bottom-left; the start (top-left) is 2 cells away in a straight line, 16 by path
    grid = value_grid(_euclidean_critic, LONG_U, goal)
    scores = topology_scores(grid)
    assert abs(scores["spearman_geodesic"]) < 0.1  # the straight line tells nothing of the path along the U
    image = grid.as_image()
    assert np.isnan(image[1, 0]) and np.isfinite(image[0, 0])  # walls are NaN in the heatmap
    assert grid.geodesic.min() == 1 and grid.geodesic.max() == 16


def test_spearman_and_ranks_match_scipy_with_ties():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 40).astype(float)
    y = x + rng.normal(0, 1.0, 40)
    np.testing.assert_allclose(rankdata(x), stats.rankdata(x))
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert np.isnan(spearman(np.ones(5), np.arange(5)))
    with pytest.raises(ValueError, match="must match"):
        spearman(np.ones(3), np.ones(4))


def test_value_grid_rejects_a_goal_in_a_wall_or_outside():
    with pytest.raises(ValueError, match="wall"):
        value_grid(_euclidean_critic, LONG_U, np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="outside"):
        value_grid(_euclidean_critic, LONG_U, np.array([20.0, 0.5]))


# ------------------------------------------------------------------ multi-sample action selection


def _small_crl():
    agent = CRL(CRLConfig(state_size=4, goal_size=2, action_size=2, actor_depth=4, critic_depth=4, actor_width=32, critic_width=32))
    return agent, agent.init(jax.random.PRNGKey(0))


def test_best_of_k_picks_the_sampled_action_with_the_highest_critic_value(compile_fast):
    agent, state = _small_crl()
    obs = jax.random.normal(jax.random.PRNGKey(1), (8, 6))
    key, k = jax.random.PRNGKey(2), 16
    actions, q = agent.best_of_samples(state.actor_params, state.critic_params, obs, key, k)
    # The same K candidates, by hand: the policy's samples with the same noise.
    mean, log_std = agent.actor.apply(state.actor_params, obs)
    eps = jax.random.normal(key, (k,) + mean.shape)
    candidates = jnp.tanh(mean[None] + jnp.exp(log_std)[None] * eps)
    scores = jnp.stack([agent.q_value(state.critic_params, obs[:, :4], candidates[i], obs[:, 4:]) for i in range(k)])
    best = np.asarray(jnp.argmax(scores, axis=0))
    np.testing.assert_allclose(actions, candidates[best, np.arange(8)], rtol=1e-6)
    np.testing.assert_allclose(q, scores.max(axis=0), rtol=1e-5)
    assert np.all(np.asarray(q)[None] >= np.asarray(scores) - 1e-5)
    assert len(np.unique(best)) > 1  # different rows prefer different samples: the choice is real


def test_select_action_rules(compile_fast):
    agent, state = _small_crl()
    params = state.export()
    obs = jax.random.normal(jax.random.PRNGKey(3), (5, 6))
    key = jax.random.PRNGKey(4)
    np.testing.assert_allclose(agent.select_action(params, obs, None, 0), agent.act(params["actor_params"], obs, deterministic=True))
    np.testing.assert_allclose(agent.select_action(params, obs, key, 1), agent.act(params["actor_params"], obs, key))
    best, _ = agent.best_of_samples(params["actor_params"], params["critic_params"], obs, key, 4)
    np.testing.assert_allclose(agent.select_action(params, obs, key, 4), best)
