"""Stitching (the paper's finding 7): training pairs at most K cells apart along the corridors, evaluation
on pairs at every distance 1..M with success reported per distance."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_helpers import assert_one_error_line, run_main

from deepcrl.envs import make_env
from deepcrl.errors import ConfigError
from deepcrl.evaluate import make_evaluate

DRAWS = 6000


def cells_of(env, xy):
    return np.floor(np.asarray(xy)[..., ::-1] / env.cell_size).astype(int)  # (row, col)


@pytest.mark.parametrize("layout, k", [("big_maze", 3), ("u_maze", 2), ("serpentine", 4)])
def test_training_pairs_lie_within_k_cells_and_every_distance_is_drawn_alike(layout, k, compile_fast):
    env = make_env(f"point_{layout}", train_max_goal_cells=k)
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), DRAWS))
    starts, goals = cells_of(env, states.physics.pos), cells_of(env, states.goal)
    path = np.array([env.layout.geodesic_distances([tuple(s)])[tuple(g)] for s, g in zip(starts, goals)])
    np.testing.assert_array_equal(path, np.asarray(jax.vmap(env.path_distance)(states)))
    counts = np.bincount(path, minlength=k + 1)
    assert counts[0] == 0 and counts[k + 1 :].sum() == 0  # never the goal's own cell, never beyond K
    # each distance 1..K about DRAWS / K times (binomial: 5 standard deviations)
    expected, sd = DRAWS / k, np.sqrt(DRAWS * (1 / k) * (1 - 1 / k))
    assert np.all(np.abs(counts[1:] - expected) < 5 * sd), counts
    # every pair at distance 1 can be drawn: the draws cover them (a few hundred pairs, thousands of draws)
    pairs, dists = env.layout.pairs_within(1, 1)
    drawn = {tuple(s) + tuple(g) for s, g, d in zip(starts, goals, path) if d == 1}
    assert drawn == {tuple(p) for p in pairs} or len(drawn) > 0.95 * len(pairs)


def test_evaluation_reports_success_per_path_distance(compile_fast):
    env = make_env("point_big_maze", train_max_goal_cells=3, eval_max_goal_cells=6)
    assert env.eval_distances == (1, 2, 3, 4, 5, 6)
    start = jax.vmap(env.eval_reset)(jax.random.split(jax.random.PRNGKey(1), 512))
    assert set(np.unique(np.asarray(jax.vmap(env.path_distance)(start)))) == set(range(1, 7))

    # a probe policy with a known answer: standing still succeeds only where the goal is within the
    # threshold at the start, which no pair 1 or more cells apart is (cell centres 1 apart, threshold 0.5,
    # noise keeps the start inside its cell): success 0 at every distance; time at goal too.
    metrics = jax.jit(lambda key: make_evaluate(env, 256)(lambda obs: jnp.zeros((obs.shape[0], 2)), key))(jax.random.PRNGKey(2))
    for k in range(1, 7):
        assert float(metrics[f"eval/success_d{k}"]) == 0.0 and float(metrics[f"eval/time_at_goal_d{k}"]) == 0.0
    # without --eval-max-goal-cells: the layout's evaluation, no per-distance columns
    layout_env = make_env("point_big_maze")
    assert getattr(layout_env, "eval_distances") is None and "eval/success_d1" not in jax.jit(
        lambda key: make_evaluate(layout_env, 8)(lambda obs: jnp.zeros((obs.shape[0], 2)), key)
    )(jax.random.PRNGKey(0))


def test_per_distance_means_weight_to_the_overall_mean(compile_fast):
    env = make_env("point_u_maze", eval_max_goal_cells=4)
    # a policy that moves right: it reaches some goals and not others, so the means are not all 0
    metrics = jax.jit(lambda key: make_evaluate(env, 512)(lambda obs: jnp.tile(jnp.array([[1.0, 0.0]]), (obs.shape[0], 1)), key))(
        jax.random.PRNGKey(3)
    )
    start = jax.vmap(env.eval_reset)(jax.random.split(jax.random.PRNGKey(3), 512))
    counts = np.bincount(np.asarray(jax.vmap(env.path_distance)(start)), minlength=5)[1:]
    weighted = sum(counts[k - 1] * float(metrics[f"eval/success_d{k}"]) for k in range(1, 5)) / counts.sum()
    assert weighted == pytest.approx(float(metrics["eval/success"]), abs=1e-5)
    assert 0 < float(metrics["eval/success"]) < 1


@pytest.mark.parametrize(
    "argv, names",
    [
        (["--train-max-goal-cells", "0"], ["--train-max-goal-cells 0", "positive"]),
        (["--env", "point_u_maze", "--eval-max-goal-cells", "40"], ["--eval-max-goal-cells 40", "farther apart than"]),
        (["--train-max-goal-cells", "3", "--chain-goals"], ["--chain-goals", "--train-max-goal-cells 3"]),
        (["--env", "ant", "--train-max-goal-cells", "3"], ["train_max_goal_cells", "ant"]),
    ],
    ids=["zero", "too-far", "chain", "not-a-point-maze"],
)
def test_bad_stitching_settings_are_one_line(argv, names, capsys, workdir):
    code, _, err = run_main(["train", *argv, "--dry-run"], capsys)
    assert_one_error_line(code, err, *names)


def test_the_pair_table_refuses_what_the_layout_cannot_hold():
    with pytest.raises(ConfigError, match="farther apart"):
        make_env("point_open", train_max_goal_cells=50)
