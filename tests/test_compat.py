"""Runs written by deepcrl 0.1.0 before the reorganisation (tests/data/run_v0_1: a point_open run of 4
epochs with its policy checkpoint and the training-state checkpoint of epoch 2, written by commit
1887db7) still load, evaluate and resume to the same metrics."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np

import deepcrl
from deepcrl.checkpoints import load_policy_checkpoint
from deepcrl.config_files import load_config_file

OLD_RUN = Path(__file__).parent / "data" / "run_v0_1"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_an_old_config_loads_under_the_renamed_fields():
    config = load_config_file(OLD_RUN / "config.json")  # written with `unroll`, now `network_unroll`
    assert config.network_unroll == 0 and config.depth == 4 and config.width == 16


def test_an_old_policy_checkpoint_loads_and_acts():
    config, task, agent, payload = load_policy_checkpoint(OLD_RUN)
    policy = deepcrl.load_policy(OLD_RUN)
    obs = jnp.asarray(np.random.default_rng(0).uniform(0, 7, (4, task.obs_size)), jnp.float32)
    np.testing.assert_allclose(policy(obs), agent.act(payload["actor_params"], obs, deterministic=True), rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(np.asarray(policy(obs))) <= 1.0)


def test_an_old_training_state_resumes_to_the_same_metrics(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    shutil.rmtree(run / "checkpoint")
    result = deepcrl.resume(run, load_config_file(run / "config.json"))  # from epoch 2 of 4
    assert not result.interrupted and (run / "checkpoint" / "agent.msgpack").is_file()
    old, new = _rows(OLD_RUN), _rows(run)
    assert [r["epoch"] for r in new] == [r["epoch"] for r in old] == ["2", "4"]
    for before, after in zip(old, new):
        assert list(before) == list(after)
        # the same numbers up to the CPU's rounding: bitwise on the machine that wrote the run, within 1e-7
        # relative on another CPU build (XLA's kernels round differently); a wrong resume differs by far more
        names = [k for k in before if k != "time_s"]
        np.testing.assert_allclose([float(after[k]) for k in names], [float(before[k]) for k in names], rtol=1e-5, atol=1e-7)
