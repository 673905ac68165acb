"""Very deep networks on a CPU: a 1024-layer critic with a 512-layer actor (the paper's deepest
configuration) trains for a few steps with finite losses and gradients, rematerialisation changes
memory, not results, and bfloat16 multiplies stay close to float32."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl import Config
from deepcrl.agents.crl import CRL
from deepcrl.replay import Batch
from deepcrl.build import build_task_and_agent as build_agent
from deepcrl.programs import Trainer

DEEP = Config(
    env="point_open",
    critic_depth=1024,
    actor_depth=512,
    width=16,
    repr_dim=16,
    num_envs=8,
    unroll_length=10,
    updates_per_epoch=3,
    batch_size=16,
    buffer_size=100,
    prefill_steps=20,
    episode_length=50,
    total_env_steps=160,
    num_evals=1,
    num_eval_envs=4,
    progress=False,
    tensorboard=False,
)


def test_depth_1024_critic_trains_with_finite_losses_and_gradients(compile_fast):
    trainer = Trainer(DEEP)
    state = trainer.init(jax.random.PRNGKey(0))
    before = jax.tree_util.tree_leaves(state.agent.critic_params)[0].copy()
    for _ in range(2):
        state, metrics = trainer.epoch(state)
        metrics = jax.device_get(metrics)
        assert int(metrics["health/first_bad_step"]) == -1
        for name in ("critic/loss", "actor/loss", "critic/grad_norm", "actor/grad_norm"):
            assert np.isfinite(metrics[name]), name
        assert metrics["critic/grad_norm"] > 0 and metrics["actor/grad_norm"] > 0
    blocks = state.agent.critic_params["sa"]["params"]["blocks"]["dense_0"]["kernel"]
    assert blocks.shape[0] == 1024 // 4  # stacked, scanned blocks
    assert not np.array_equal(before, jax.tree_util.tree_leaves(state.agent.critic_params)[0])


def _batch(rows: int = 16) -> Batch:
    keys = jax.random.split(jax.random.PRNGKey(2), 3)
    return Batch(
        obs=jax.random.normal(keys[0], (rows, 4)),
        action=jax.random.uniform(keys[1], (rows, 2), minval=-1, maxval=1),
        goal=jax.random.normal(keys[2], (rows, 2)),
        offset=jnp.ones((rows,), jnp.int32),
    )


def _rel_diff(a, b) -> float:
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y))) / (np.max(np.abs(np.asarray(y))) + 1e-12))
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


def _gradients_and_update(agent, state, batch, key):
    """((gradients, metrics), (updated state, metrics)) of one batch, in one compiled program."""
    return jax.jit(lambda s, b, k: (agent.gradients(s, b, k), agent.update(s, b, k)))(state, batch, key)


def test_remat_gives_the_same_gradients_and_update(compile_fast):
    config = dataclasses.replace(DEEP, critic_depth=64, actor_depth=16)  # 16 critic blocks: a rolled scan
    _, plain = build_agent(config)
    _, remat = build_agent(dataclasses.replace(config, remat=True))
    assert isinstance(remat, CRL) and remat.config.remat and not plain.config.remat
    state = plain.init(jax.random.PRNGKey(1))
    batch = _batch()
    (grads_plain, _), (new_plain, m_plain) = _gradients_and_update(plain, state, batch, jax.random.PRNGKey(3))
    (grads_remat, _), (new_remat, m_remat) = _gradients_and_update(remat, state, batch, jax.random.PRNGKey(3))
    assert _rel_diff(grads_remat, grads_plain) < 1e-5
    for a, b in zip(jax.tree_util.tree_leaves(new_plain), jax.tree_util.tree_leaves(new_remat)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m_plain["critic/loss"], m_remat["critic/loss"], rtol=1e-6)


def test_bfloat16_matmuls_keep_float32_parameters_and_stay_close_to_float32(compile_fast):
    config = dataclasses.replace(DEEP, critic_depth=16, actor_depth=8, width=64)
    _, f32 = build_agent(config)
    _, bf16 = build_agent(dataclasses.replace(config, matmul_dtype="bfloat16"))
    state = f32.init(jax.random.PRNGKey(1))
    assert jax.tree_util.tree_structure(bf16.init(jax.random.PRNGKey(1))) == jax.tree_util.tree_structure(state)
    batch = _batch(64)
    grads_32, m_32 = jax.jit(f32.gradients)(state, batch, jax.random.PRNGKey(3))
    (grads_16, m_16), (new_state, _) = _gradients_and_update(bf16, state, batch, jax.random.PRNGKey(3))
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(grads_16))
    phi_16, _ = bf16.representations(state.critic_params, batch.obs, batch.action, batch.goal)
    assert phi_16.dtype == jnp.float32  # representations and losses in float32
    for name in ("critic/loss", "actor/loss"):
        assert np.isfinite(m_16[name]) and abs(float(m_16[name]) - float(m_32[name])) < 0.05 * abs(float(m_32[name])) + 1e-3
    # bfloat16 keeps 8 bits of mantissa: gradients agree to a few percent, not to float32 rounding.
    diff = _rel_diff(grads_16["critic"], grads_32["critic"])
    assert 1e-5 < diff < 0.15, diff
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(new_state.critic_params))
