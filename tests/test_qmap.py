"""deepcrl qmap: the value map is the critic itself at every position (checked against direct calls of the
agent's critic), its topology score is the cells' Spearman correlations, bad input is one line.

The checkpoints are freshly initialised agents written as a finished run would write them: what is
mapped does not need training to be checked, only to be interesting."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_helpers import assert_one_error_line, run_main

from deepcrl.analysis import topology_scores
from deepcrl.analysis.value_map import farthest_eval_goal, value_map_of_run
from deepcrl.build import prepare
from deepcrl.checkpoints import save_policy_checkpoint
from deepcrl.config import Config


def checkpoint(run_dir, **settings):
    config = Config(env="point_u_maze", depth=4, width=16, run_dir=str(run_dir), **settings)
    setup = prepare(config)
    agent = setup.build_agent()
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(config.to_json())
    save_policy_checkpoint(run_dir, config, agent.init(jax.random.PRNGKey(3)))
    return setup.task, agent


@pytest.fixture(scope="module")
def crl_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("qmap") / "crl"
    env, agent = checkpoint(run_dir)
    return run_dir, env, agent


def test_values_are_the_critic_at_each_position(crl_run, compile_fast):
    run_dir, env, agent = crl_run
    vmap = value_map_of_run(run_dir, resolution=4)
    np.testing.assert_allclose(vmap.goal, farthest_eval_goal(env))
    from deepcrl.checkpoints import load_policy_checkpoint

    _, _, _, params = load_policy_checkpoint(run_dir)
    rng = np.random.default_rng(0)
    free = np.argwhere(np.isfinite(vmap.values))
    picked = free[rng.choice(len(free), 12, replace=False)]
    positions = np.stack([vmap.xs[picked[:, 1]], vmap.ys[picked[:, 0]]], axis=-1).astype(np.float32)
    obs = jnp.concatenate([positions, jnp.zeros((12, env.state_size - 2))], axis=-1)  # at rest
    goals = jnp.broadcast_to(jnp.asarray(vmap.goal, jnp.float32), (12, 2))
    action = agent.act(params["actor_params"], jnp.concatenate([obs, goals], axis=-1), deterministic=True)
    direct = np.asarray(agent.q_value(params["critic_params"], obs, action, goals))
    np.testing.assert_allclose(vmap.values[picked[:, 0], picked[:, 1]], direct, rtol=1e-5, atol=1e-5)
    # walls hold no value; the score is the cells' own
    walls = env.layout.wall_array[(np.arange(len(vmap.ys)) // 4)[:, None], (np.arange(len(vmap.xs)) // 4)[None, :]]
    assert np.isnan(vmap.values[walls]).all() and np.isfinite(vmap.values[~walls]).all()
    assert vmap.scores == topology_scores(vmap.cells)


def test_qmap_writes_the_figure_and_prints_the_score(crl_run, tmp_path, capsys, compile_fast):
    run_dir, _, _ = crl_run
    out = tmp_path / "map.svg"
    code, text, err = run_main(["qmap", str(run_dir), "--goal", "1.5,3.5", "--action", "zero", "--out", str(out), "--json"], capsys)
    assert code == 0, err
    scores = json.loads(text)
    assert scores["goal"] == [1.5, 3.5] and -1 <= scores["spearman_geodesic"] <= 1
    assert scores["topology_gap"] == pytest.approx(scores["spearman_geodesic"] - scores["spearman_euclidean"], abs=2e-4)
    assert out.read_text().lstrip().startswith("<?xml") and out.stat().st_size > 5000


@pytest.mark.parametrize(
    "argv, names",
    [
        (["--goal", "0.5,0.5"], ["--goal 0.5,0.5", "free cell"]),  # a wall of the U-maze
        (["--goal", "1,2,3"], ["--goal '1,2,3'", "X,Y"]),
        (["--action", "max"], ["--action 'max'", "policy, zero, best"]),
        (["--out", "map.jpg"], ["map.jpg", ".png or .svg"]),
    ],
    ids=["goal-in-wall", "goal-3d", "action", "suffix"],
)
def test_bad_qmap_input_is_one_line_and_writes_nothing(crl_run, argv, names, capsys, workdir, compile_fast):
    run_dir, _, _ = crl_run
    code, _, err = run_main(["qmap", str(run_dir), *argv], capsys)
    assert_one_error_line(code, err, *names)
    assert not (run_dir / "qmap.png").exists() and list(workdir.iterdir()) == []


def test_an_agent_without_a_critic_is_refused(tmp_path, capsys, compile_fast):
    checkpoint(tmp_path / "gcbc", agent="gcbc")
    code, _, err = run_main(["qmap", str(tmp_path / "gcbc")], capsys)
    assert_one_error_line(code, err, "gcbc", "no critic")


# ---------------------------------------------------------------- --pca: the paper's embedding plot


def test_pca_finds_the_directions_of_largest_variance():
    from deepcrl.analysis.embedding import pca

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) * np.array([5.0, 2.0, 0.1]) @ np.linalg.qr(rng.normal(size=(3, 3)))[0]
    x = np.concatenate([x, np.zeros((200, 5))], axis=1) + 7.0
    mean, directions, explained, proj = pca(x)
    assert directions.shape == (3, 8) and np.allclose(directions @ directions.T, np.eye(3), atol=1e-9)
    assert explained[0] > explained[1] > explained[2] and explained.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(proj @ directions + mean, x, atol=1e-9)  # three components hold it all


def test_the_embedding_is_phi_along_an_evaluation_episode_projected(crl_run, compile_fast):
    from deepcrl.analysis.embedding import embedding_of_run
    from deepcrl.checkpoints import load_policy_checkpoint

    run_dir, env, agent = crl_run
    emb = embedding_of_run(run_dir)
    assert emb.components.shape == (env.episode_length + 1, 3) and emb.distance.shape == (env.episode_length + 1,)
    _, _, _, params = load_policy_checkpoint(run_dir)
    start = env.eval_reset(jax.random.split(jax.random.PRNGKey(0), 1)[0])  # the episode's start, as run_episodes draws it
    obs = env.observation(start)[None]
    action = agent.act(params["actor_params"], obs, deterministic=True)
    phi, psi = agent.representations(params["critic_params"], start.obs[None], action, start.goal[None])
    np.testing.assert_allclose((np.asarray(phi[0]) - emb.mean) @ emb.directions.T, emb.components[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose((np.asarray(psi[0]) - emb.mean) @ emb.directions.T, emb.goal, rtol=1e-4, atol=1e-4)
    assert emb.distance[0] == pytest.approx(float(start.distance), abs=1e-5)


def test_qmap_pca_writes_the_embedding_figure_and_a_td_agent_is_refused(crl_run, tmp_path, capsys, compile_fast):
    run_dir, _, _ = crl_run
    code, text, err = run_main(["qmap", str(run_dir), "--pca", "--out", str(tmp_path / "map.png"), "--json"], capsys)
    assert code == 0, err
    result = json.loads(text)
    assert result["pca_figure"] == str(tmp_path / "map_pca.png") and (tmp_path / "map_pca.png").stat().st_size > 10000
    assert len(result["pca_explained"]) == 3 and sum(result["pca_explained"]) <= 1.0 + 1e-6
    checkpoint(tmp_path / "sac", agent="sac")
    code, _, err = run_main(["qmap", str(tmp_path / "sac"), "--pca", "--out", str(tmp_path / "sac.png")], capsys)
    assert_one_error_line(code, err, "--pca", "'sac'")
    assert not (tmp_path / "sac.png").exists()
