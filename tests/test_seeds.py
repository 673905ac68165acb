"""--num-seeds: N independent seeds in one jitted program (vmap over the whole training state).

Seed s of an N-seed run must be the run `--seed s` would have been: same keys, same data, same
updates (to float rounding: a batched matrix multiply may round differently from a single one).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
import pytest

import deepcrl
from deepcrl import Config, ConfigError, Trainer
from deepcrl.checkpoints import load_policy, load_policy_checkpoint
from deepcrl.logger import read_metrics
from deepcrl.metrics import metric_columns
from conftest import fast_compiles
from deepcrl.programs import run_keys


@pytest.fixture(scope="module", autouse=True)
def _compile_fast():
    """A few epochs of tiny networks: compiling is the cost (every program of this module, the module's
    run and its resume alike)."""
    with fast_compiles():
        yield


TINY = dict(
    env="point_open",
    num_envs=8,
    unroll_length=10,
    updates_per_epoch=5,
    batch_size=32,
    buffer_size=100,
    prefill_steps=20,
    episode_length=20,
    total_env_steps=8 * 10 * 6,
    num_evals=2,
    num_eval_envs=16,
    depth=4,
    width=16,
    repr_dim=8,
    progress=False,
    tensorboard=False,
    checkpoint_every=3,
    seed=5,
)


def _max_abs_diff(a, b) -> float:
    return max(
        float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


def test_each_seed_of_a_vmapped_run_equals_the_single_run_with_that_seed():
    multi = Trainer(Config(**dict(TINY, num_seeds=2)))  # the programs of `multi_seed_run` (compiled once, cached)
    init_keys, _ = run_keys(multi.config)
    state = multi.init(init_keys)
    for _ in range(3):
        state, metrics = multi.epoch(state)
    assert metrics["critic/loss"].shape == (2,)

    single = Trainer(Config(**TINY))
    for i, seed in enumerate((5, 6)):
        key, _ = run_keys(dataclasses.replace(single.config, seed=seed))
        one = single.init(key)
        for _ in range(3):
            one, one_metrics = single.epoch(one)
        mine = jax.tree_util.tree_map(lambda x: x[i], state)
        # Data collected and sampled are the same (integers and the buffer's rows match exactly) ...
        np.testing.assert_array_equal(mine.episode_ids, one.episode_ids)
        np.testing.assert_array_equal(mine.buffer.data.episode_id, one.buffer.data.episode_id)
        # ... and the networks followed the same updates.
        assert _max_abs_diff(mine.agent.critic_params, one.agent.critic_params) < 1e-4
        assert _max_abs_diff(mine.agent.actor_params, one.agent.actor_params) < 1e-4
        assert abs(float(metrics["critic/loss"][i]) - float(one_metrics["critic/loss"])) < 1e-4
    # The seeds are different runs.
    assert (
        _max_abs_diff(
            jax.tree_util.tree_map(lambda x: x[0], state.agent.critic_params),
            jax.tree_util.tree_map(lambda x: x[1], state.agent.critic_params),
        )
        > 1e-2
    )


def test_metric_columns_give_mean_standard_error_and_each_seed():
    config = Config(**dict(TINY, num_seeds=3))
    row = metric_columns({"eval/success": np.array([0.2, 0.4, 0.9])}, config.seed, config.num_seeds)
    assert row["eval/success"] == pytest.approx(0.5)
    assert row["eval/success/se"] == pytest.approx(np.std([0.2, 0.4, 0.9], ddof=1) / math.sqrt(3))
    assert [row[f"eval/success/seed{s}"] for s in (5, 6, 7)] == pytest.approx([0.2, 0.4, 0.9])
    assert metric_columns({"x": np.float32(1.5)}, Config(**TINY).seed, Config(**TINY).num_seeds) == {"x": 1.5}


@pytest.fixture(scope="module")
def multi_seed_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("seeds") / "run"
    result = deepcrl.train(Config(**dict(TINY, num_seeds=2, run_dir=str(run_dir))))
    return run_dir, result


def test_a_multi_seed_run_writes_per_seed_columns_and_a_checkpoint_per_seed(multi_seed_run):
    run_dir, result = multi_seed_run
    rows = read_metrics(run_dir)
    assert len(rows) == 2
    last = rows[-1]
    for name in ("eval/success", "critic/loss", "collect/episodes"):
        assert {name, f"{name}/se", f"{name}/seed5", f"{name}/seed6"} <= set(last)
        assert last[name] == pytest.approx((last[f"{name}/seed5"] + last[f"{name}/seed6"]) / 2, abs=1e-6)
    config, env, _, payload = load_policy_checkpoint(run_dir)
    assert config.num_seeds == 2
    assert all(np.shape(x)[0] == 2 for x in jax.tree_util.tree_leaves(payload))
    obs = np.linspace(0.0, 3.0, 4 * env.obs_size, dtype=np.float32).reshape(4, env.obs_size)
    a5, a6 = np.asarray(load_policy(run_dir)(obs)), np.asarray(load_policy(run_dir, seed=6)(obs))
    assert a5.shape == (4, 2) and not np.allclose(a5, a6)
    np.testing.assert_array_equal(a5, np.asarray(load_policy(run_dir, seed=5)(obs)))
    with pytest.raises(ConfigError, match="seed=9 is not in this run; it trained seeds 5 .. 6"):
        load_policy(run_dir, seed=9)


def test_deepcrl_eval_reports_every_seed_with_mean_and_standard_error(multi_seed_run, capsys):
    import json

    from deepcrl.cli import main

    run_dir, _ = multi_seed_run
    assert main(["eval", str(run_dir), "--json", "--num-envs", "16"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    per_seed = [metrics["eval/final_distance/seed5"], metrics["eval/final_distance/seed6"]]
    assert metrics["eval/final_distance"] == pytest.approx(sum(per_seed) / 2, abs=1e-6)
    assert metrics["eval/final_distance/se"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2, rel=1e-5, abs=1e-9)


def test_a_multi_seed_run_resumes_to_the_same_parameters(multi_seed_run, tmp_path):
    """Resume from the epoch-3 checkpoint of a copy: the end state equals the uninterrupted run's."""
    import shutil

    run_dir, _ = multi_seed_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "checkpoint")
    # Keep only the epoch-3 training state, as if the run had stopped there.
    for path in sorted((copy / "state").iterdir()):
        if path.name != "epoch_00000003":
            shutil.rmtree(path)
    deepcrl.loop.resume(copy)
    want = (run_dir / "checkpoint" / "agent.msgpack").read_bytes()
    got = (copy / "checkpoint" / "agent.msgpack").read_bytes()
    assert got == want


def test_bad_seed_ranges_are_refused():
    with pytest.raises(ConfigError, match="num_seeds=0"):
        Trainer(Config(**dict(TINY, num_seeds=0)))
    with pytest.raises(ConfigError, match="seed"):
        deepcrl.build.validate(Config(**dict(TINY, seed=2**32 - 1, num_seeds=2)))
