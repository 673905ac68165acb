"""The training program: Trainer's pure pieces, the `train` host loop, its run directory, loading the
policy back, and that a short run learns to reach the goal of the open arena."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import deepcrl
from deepcrl import Config, ConfigError, Trainer
from deepcrl.checkpoints import load_policy_checkpoint
from deepcrl.evaluate import make_evaluate
from deepcrl.logger import read_metrics
from deepcrl.config_files import load_config_file


def _leaves_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(x, y) for x, y in zip(la, lb))


@pytest.fixture(scope="module")
def config(small_run) -> Config:
    return Config(**dict(small_run, tensorboard=False))


@pytest.fixture(scope="module")
def trainer(config) -> Trainer:
    return Trainer(config)


@pytest.fixture(scope="module")
def run(small_run, tmp_path_factory):
    """One short training run through the public entry point (the expensive part of this module)."""
    cfg = Config(**dict(small_run, run_dir=str(tmp_path_factory.mktemp("train") / "run")))
    result = deepcrl.train(cfg)
    return cfg, result


# ----------------------------------------------------------------------------------------- Trainer


def test_init_and_epochs_advance_counters_buffer_and_episode_ids(trainer, config):
    c = config
    state = trainer.init(jax.random.PRNGKey(1))
    assert int(state.env_steps) == 0 and int(state.epoch) == 0
    assert int(state.buffer.count) == c.prefill_steps
    # Point-maze episodes only truncate, all environments in step: episode k covers steps [50k, 50k+50).
    np.testing.assert_array_equal(np.asarray(state.episode_ids), c.prefill_steps // c.episode_length)
    assert float(jnp.abs(state.agent.log_alpha)) == 0.0  # no update during prefill
    episodes_ended = []
    for epoch in (1, 2, 3):
        state, metrics = trainer.epoch(state)
        episodes_ended.append(float(metrics["collect/episodes"]))
        steps = c.prefill_steps + epoch * c.unroll_length
        assert int(state.epoch) == epoch
        assert int(state.env_steps) == epoch * c.num_envs * c.unroll_length
        assert int(state.agent.steps) == epoch * c.updates_per_epoch
        assert int(state.buffer.count) == min(steps, c.buffer_size)
        assert int(state.buffer.insert_pos) == steps % c.buffer_size
        np.testing.assert_array_equal(np.asarray(state.episode_ids), steps // c.episode_length)
        metrics = jax.device_get(metrics)
        for key in (
            "critic/loss",
            "critic/accuracy",
            "actor/loss",
            "alpha/value",
            "replay/goal_offset",
            "collect/success_rate",
            "collect/episodes",
        ):
            assert np.isfinite(metrics[key]), key
        assert float(metrics["replay/goal_offset"]) >= 1.0
    # Every environment's episode ended once at step 100, in epoch 2 (steps 76..100).
    assert episodes_ended == [0.0, c.num_envs, 0.0]

    # The buffer holds the trajectories in order: episode ids follow the step counter, and within an
    # episode the stored next achieved goal is the position at the next step (before any reset).
    buf = jax.device_get(state.buffer)
    count = int(buf.count)
    rows = [(int(buf.insert_pos) - count + i) % c.buffer_size for i in range(count)]
    ids = buf.data.episode_id[rows]  # [count, num_envs]
    np.testing.assert_array_equal(ids, np.broadcast_to((np.arange(count) // c.episode_length)[:, None], ids.shape))
    obs, nxt = buf.data.obs[rows], buf.data.next_achieved[rows]
    same = ids[1:] == ids[:-1]
    np.testing.assert_allclose(nxt[:-1][same], obs[1:, :, :2][same], atol=1e-6)
    # Across a boundary the next row is a fresh start, not the stored next state.
    assert not np.allclose(nxt[:-1][~same], obs[1:, :, :2][~same], atol=1e-3)


def test_epochs_are_deterministic_per_seed(trainer):
    def two_epochs(seed):
        state = trainer.init(jax.random.PRNGKey(seed))
        for _ in range(2):
            state, _ = trainer.epoch(state)
        return jax.device_get((state.agent, state.buffer.data))

    a, b, other = two_epochs(3), two_epochs(3), two_epochs(4)
    assert _leaves_equal(a, b)
    assert not _leaves_equal(a[0].actor_params, other[0].actor_params)
    assert not _leaves_equal(a[0].critic_params, other[0].critic_params)
    assert not _leaves_equal(a[1].obs, other[1].obs)


# ----------------------------------------------------------------------------------------- train()


def test_train_writes_the_run_directory(run):
    cfg, result = run
    run_dir = Path(cfg.run_dir)
    assert result.run_dir == run_dir
    assert load_config_file(run_dir / "config.json") == cfg
    assert load_config_file(run_dir / "checkpoint" / "config.json") == cfg
    assert (run_dir / "checkpoint" / "agent.msgpack").stat().st_size > 1000
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".checkpoint")]  # no leftover temp folder
    events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0

    with (run_dir / "metrics.csv").open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = reader.fieldnames
    for column in (
        "epoch",
        "env_steps",
        "eval/time_at_goal",
        "eval/success",
        "eval/final_distance",
        "critic/accuracy",
        "critic/loss",
        "actor/loss",
        "alpha/value",
    ):
        assert column in columns
    # One row per evaluation, at the configured epochs.
    assert [int(float(r["epoch"])) for r in rows] == cfg.eval_epochs == [20, 40, 60]
    assert [int(float(r["env_steps"])) for r in rows] == [e * cfg.env_steps_per_epoch for e in cfg.eval_epochs]


def test_run_result_matches_metrics_csv(run):
    cfg, result = run
    rows = read_metrics(cfg.run_dir)
    assert len(result.history) == len(rows) == 3
    assert set(result.metrics) == set(rows[-1])
    for key, value in rows[-1].items():
        assert result.metrics[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    for key, value in result.final_score.items():
        assert key.startswith("eval/")
        assert value == pytest.approx(np.mean([r[key] for r in rows]), rel=1e-6, abs=1e-9)
    assert "eval/time_at_goal" in result.final_score


def test_load_policy_single_and_batch(run):
    cfg, _ = run
    policy = deepcrl.load_policy(cfg.run_dir)
    env = deepcrl.build.build_task(cfg)
    states = jax.vmap(env.eval_reset)(jax.random.split(jax.random.PRNGKey(0), 5))
    obs = np.asarray(jax.vmap(env.observation)(states))
    batch = np.asarray(policy(obs))
    assert batch.shape == (5, env.action_size)
    assert np.all(np.abs(batch) <= 1.0) and np.all(np.isfinite(batch))
    single = np.asarray(policy(obs[0]))
    assert single.shape == (env.action_size,)
    np.testing.assert_allclose(single, batch[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(policy(list(map(float, obs[1])))), batch[1], rtol=1e-5, atol=1e-6)


def test_train_equals_trainer_and_load_policy_equals_trained_actor(run, trainer):
    cfg, _ = run
    # train(): init with the first half of PRNGKey(seed), then num_epochs epochs; the same pure pieces
    # by hand give bit-identical parameters, and those are what the checkpoint holds.
    init_key, _ = jax.random.split(jax.random.PRNGKey(cfg.seed))
    state = trainer.init(init_key)
    for _ in range(cfg.num_epochs):
        state, _ = trainer.epoch(state)
    actor_params = jax.device_get(state.agent.actor_params)
    _, _, _, payload = load_policy_checkpoint(cfg.run_dir)
    assert _leaves_equal(payload["actor_params"], actor_params)
    assert _leaves_equal(payload["critic_params"], jax.device_get(state.agent.critic_params))
    np.testing.assert_array_equal(payload["log_alpha"], jax.device_get(state.agent.log_alpha))

    obs = jax.random.uniform(jax.random.PRNGKey(9), (32, trainer.env.obs_size), minval=0.0, maxval=7.0)
    want = jax.jit(lambda p, o: trainer.agent.act(p, o, deterministic=True))(actor_params, obs)
    got = deepcrl.load_policy(cfg.run_dir)(obs)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def _random_policy(obs: jax.Array) -> jax.Array:
    """Uniform actions in [-1, 1]^2, drawn from a key hashed from each observation (evaluate passes no key)."""
    bits = jax.lax.bitcast_convert_type(obs.astype(jnp.float32), jnp.uint32)
    seeds = jnp.sum(bits * jnp.arange(1, obs.shape[-1] + 1, dtype=jnp.uint32), axis=-1)
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(123), s))(seeds)
    return jax.vmap(lambda k: jax.random.uniform(k, (2,), minval=-1.0, maxval=1.0))(keys)


def test_short_training_clearly_beats_a_random_policy(run):
    cfg, result = run
    env = deepcrl.build.build_task(cfg)
    evaluate = make_evaluate(env, cfg.num_eval_envs)
    policy = deepcrl.load_policy(cfg.run_dir)
    key = jax.random.PRNGKey(2024)  # the same evaluation episodes for both policies
    trained, random = jax.device_get(jax.jit(lambda k: (evaluate(policy, k), evaluate(_random_policy, k)))(key))
    assert float(trained["eval/success"]) >= float(random["eval/success"]) + 0.5, (trained, random)
    assert float(trained["eval/final_distance"]) < float(random["eval/final_distance"]) - 2.0, (trained, random)
    assert float(trained["eval/time_at_goal"]) > float(random["eval/time_at_goal"]) + 5.0
    # ... and the run's own last evaluation said so too.
    assert result.metrics["eval/success"] >= 0.5


# ----------------------------------------------------------------------------------------- checkpoint errors


@pytest.fixture
def run_copy(run, tmp_path):
    cfg, _ = run
    dst = tmp_path / "copy"
    shutil.copytree(cfg.run_dir, dst)
    return dst


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupted_checkpoint_raises_config_error(run_copy, damage):
    path = run_copy / "checkpoint" / "agent.msgpack"
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00not msgpack" * 50, "empty": b""}[damage])
    with pytest.raises(ConfigError, match="agent.msgpack"):
        deepcrl.load_policy(run_copy)


def test_checkpoint_from_other_networks_raises_config_error(run_copy):
    # A config.json naming a different width than the saved parameters: caught at load, not at first use.
    path = run_copy / "checkpoint" / "config.json"
    data = json.loads(path.read_text())
    data["width"] = 16
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="does not match"):
        deepcrl.load_policy(run_copy)


@pytest.mark.parametrize("damage", ["bad_json", "bad_value", "unknown_key"])
def test_corrupted_checkpoint_config_raises_config_error(run_copy, damage):
    path = run_copy / "checkpoint" / "config.json"
    data = json.loads(path.read_text())
    if damage == "bad_json":
        path.write_text(path.read_text()[:20])
    elif damage == "bad_value":
        path.write_text(json.dumps(dict(data, depth=6)))
    else:
        path.write_text(json.dumps(dict(data, wings=2)))
    with pytest.raises(ConfigError):
        deepcrl.load_policy(run_copy)


def test_missing_checkpoint_raises_config_error(run_copy, tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint"):
        deepcrl.load_policy(tmp_path / "does-not-exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no checkpoint"):
        deepcrl.load_policy(tmp_path / "empty")
    (run_copy / "checkpoint" / "agent.msgpack").unlink()
    with pytest.raises(ConfigError, match="no checkpoint"):
        deepcrl.load_policy(run_copy)
