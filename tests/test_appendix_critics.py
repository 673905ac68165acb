"""The paper's appendix critics: hyperspherical networks stay on the sphere after every step (and would not
without the projection), and --energy mrn with --normalization hyperspherical trains end to end: the
command line, checkpoints, an exact resume, eval and qmap (which says which way MRN measures)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from deepcrl.agents.crl import CRL, CRLConfig
from deepcrl.agents.sac import SAC, SACConfig
from deepcrl.checkpoints import list_train_states
from deepcrl.replay import TDBatch

from test_agent import TINY, _batch
from test_resume import deepcrl, tiny

FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _kernel_column_norms(params) -> np.ndarray:
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return np.concatenate([np.linalg.norm(np.asarray(v), axis=-2).ravel() for k, v in leaves if k[-1].key == "kernel"])


def _three_steps(agent, state):
    def step(s, key):
        s, _ = agent.update(s, _batch(1), key)
        return s, (s.actor_params, s.critic_params)

    return jax.jit(lambda s: jax.lax.scan(step, s, jax.random.split(jax.random.PRNGKey(3), 3)), compiler_options=FAST_COMPILE)(state)


def test_hyperspherical_kernels_have_unit_columns_after_every_step_and_would_not_without_the_projection():
    agent = CRL(CRLConfig(**TINY, normalization="hyperspherical"))
    state = agent.init(jax.random.PRNGKey(0))
    assert np.allclose(_kernel_column_norms((state.actor_params, state.critic_params)), 1.0, atol=1e-6)
    # the same networks with plain Adam (no projection) as the control
    plain = CRL(CRLConfig(**TINY, normalization="hyperspherical"))
    plain.actor_optimizer, plain.critic_optimizer = optax.adam(plain.config.actor_lr), optax.adam(plain.config.critic_lr)
    plain_state = dataclasses.replace(
        state, actor_opt=plain.actor_optimizer.init(state.actor_params), critic_opt=plain.critic_optimizer.init(state.critic_params)
    )

    final, per_step = _three_steps(agent, state)
    _, plain_steps = _three_steps(plain, plain_state)
    for i in range(3):
        norms = _kernel_column_norms(jax.tree_util.tree_map(lambda x: x[i], per_step))
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)
        drift = np.max(np.abs(_kernel_column_norms(jax.tree_util.tree_map(lambda x: x[i], plain_steps)) - 1.0))
        assert drift > 1e-4, f"step {i}: without the projection the kernels stay on the sphere too ({drift}); the test would not see it"
    moved = optax.tree.norm(jax.tree_util.tree_map(lambda a, b: a - b, final.critic_params, state.critic_params))
    assert float(moved) > 0
    # the scales and biases learn freely (not projected)
    assert not np.allclose(np.asarray(final.critic_params["sa"]["params"]["head"]["scale"]), 1.0)


def test_a_td_agent_keeps_its_online_kernels_on_the_sphere():
    sizes = {k: v for k, v in TINY.items() if k != "repr_dim"}
    agent = SAC(SACConfig(**sizes, normalization="hyperspherical"))
    state = agent.init(jax.random.PRNGKey(0))
    batch = _batch(1)
    rows = batch.obs.shape[0]
    b = TDBatch(
        obs=batch.obs,
        action=batch.action,
        goal=batch.goal,
        next_obs=batch.obs + 0.01,
        reward=jnp.zeros(rows),
        terminal=jnp.zeros(rows),
        relabelled=jnp.zeros(rows),
    )
    new, _ = jax.jit(agent.update)(state, b, jax.random.PRNGKey(1))  # (not FAST_COMPILE: at XLA's level 0 this SAC update gave NaN actors)
    np.testing.assert_allclose(_kernel_column_norms((new.actor_params, new.critic_params)), 1.0, atol=1e-5)


FLAGS = ["--energy", "mrn", "--contrastive-loss", "bwd_infonce", "--normalization", "hyperspherical", "--repr-dim", "32"]


@pytest.mark.slow
def test_mrn_with_hyperspherical_networks_trains_resumes_exactly_and_maps(tmp_path):
    run_dir = tmp_path / "mrn"
    done = deepcrl("train", *tiny(total_env_steps=1600, num_evals=4), *FLAGS, "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stderr
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["energy"], config["normalization"], config["contrastive_loss"]) == ("mrn", "hyperspherical", "bwd_infonce")
    final = (run_dir / "checkpoint" / "agent.msgpack").read_bytes()
    rows = (run_dir / "metrics.csv").read_text()

    # Pretend the run died after epoch 15's checkpoint; the resumed run is the same run, bit for bit.
    saved = list_train_states(run_dir)
    assert [p.name for p in saved] == ["epoch_00000015", "epoch_00000020"]
    shutil.rmtree(saved[-1])
    shutil.rmtree(run_dir / "checkpoint")
    (run_dir / "metrics.csv").write_text("".join(rows.splitlines(keepends=True)[:4]))  # the header and epochs 5, 10, 15
    resumed = deepcrl("train", "--resume", str(run_dir), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / "checkpoint" / "agent.msgpack").read_bytes() == final

    evaluated = deepcrl("eval", str(run_dir), "--num-envs", "8", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "eval/success" in json.loads(evaluated.stdout)

    mapped = deepcrl("qmap", str(run_dir), "--out", str(tmp_path / "q.png"))
    assert mapped.returncode == 0, mapped.stderr
    assert "from (s, a) to the goal" in mapped.stdout and (tmp_path / "q.png").stat().st_size > 0


def test_bad_combinations_are_one_line_errors(tmp_path):
    for flags, needle in (
        (["--energy", "mrn", "--repr-dim", "40"], "repr-dim 40"),
        (["--normalization", "unit"], "'unit'"),
        (["--normalization", "hyperspherical", "--no-layer-norm"], "means --normalization none"),
    ):
        done = deepcrl("train", *tiny(), *flags, "--run-dir", str(tmp_path / "never"))
        assert done.returncode == 2, (flags, done.stderr)
        assert done.stderr.strip().count("\n") == 0 and needle in done.stderr, (flags, done.stderr)
        assert not (tmp_path / "never").exists()
