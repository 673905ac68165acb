"""Checks that need two JAX devices, run by tests/test_parallel.py in a subprocess.

JAX fixes its device count when it starts, so these run in a fresh interpreter with
XLA_FLAGS=--xla_force_host_platform_device_count=2; each case prints one JSON line of measurements and
the test asserts on them.

    python tests/parallel_worker.py update     # 1 device, batch B  vs  2 devices, B/2 each
    python tests/parallel_worker.py train RUN_DIR [--num-seeds N]
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl import parallel, replay
from deepcrl.agents.crl import CRL, CRLConfig

GLOBAL_BATCH = 16
# Every program here is tiny and runs a few times: skip XLA's expensive optimisation passes when compiling
# (about a third less compile time; the one- and two-device programs are compiled alike).
jax.config.update("jax_disable_most_optimizations", True)


def _max_rel_diff(a, b) -> float:
    """Largest |a - b| / (|b| + 1e-6 * max|b|) over the leaves of two pytrees, leaf by leaf."""
    worst = 0.0
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        scale = np.abs(y).max() + 1e-12
        worst = max(worst, float(np.max(np.abs(x - y)) / scale))
    return worst


def _mean_abs(a, b) -> float:
    """Mean |a - b| over every parameter (actor, critic, log alpha) of two agent states."""
    pick = lambda s: (s.actor_params, s.critic_params, s.log_alpha)  # noqa: E731
    diffs = [
        np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).ravel()
        for x, y in zip(jax.tree_util.tree_leaves(pick(a)), jax.tree_util.tree_leaves(pick(b)), strict=True)
    ]
    return float(np.concatenate(diffs).mean())


def three_steps(agent):
    """(state, batch, key) -> (the state after 3 updates on `batch`, the last update's metrics): one
    compiled copy of the update, scanned."""

    def run(state, batch, key):
        state, metrics = jax.lax.scan(lambda s, k: agent.update(s, batch, k), state, jax.random.split(key, 3))
        return state, jax.tree_util.tree_map(lambda m: m[-1], metrics)

    return run


LOSSES = ("fwd_infonce", "sym_infonce", "bwd_infonce", "binary_nce")


def check_update() -> dict:
    """Loss, metrics, gradients and 3 SGD steps: 2 devices (global negatives) vs 1 device, same global batch.

    Every loss's gradients (and, for the first loss, three whole updates: Adam included) are computed in
    one program per device count."""
    out = {}
    mesh = parallel.make_mesh(2)
    rep, split = parallel.REPLICATED, parallel.SPLIT

    def crl_config(loss):
        return CRLConfig(
            state_size=5,
            goal_size=2,
            action_size=3,
            actor_depth=4,
            critic_depth=8,
            actor_width=16,
            critic_width=16,
            repr_dim=8,
            contrastive_loss=loss,
        )

    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    batch = replay.Batch(
        obs=jax.random.normal(keys[0], (GLOBAL_BATCH, 5)),
        action=jax.random.uniform(keys[1], (GLOBAL_BATCH, 3), minval=-1, maxval=1),
        goal=jax.random.normal(keys[2], (GLOBAL_BATCH, 2)),
        offset=jnp.ones((GLOBAL_BATCH,), jnp.int32),
    )
    state = jax.jit(CRL(crl_config(LOSSES[0])).init)(keys[3])  # the loss does not enter the parameters

    def every_loss(axis_name):
        def run(state, batch, key):
            results = {}
            for loss in LOSSES:
                agent = CRL(crl_config(loss), axis_name=axis_name)
                whole = three_steps(agent)(state, batch, key)[0] if loss == LOSSES[0] else None
                results[loss] = (agent.gradients(state, batch, key), whole)
            return results

        return run

    one = jax.jit(every_loss(None))(state, batch, keys[4])
    two = jax.jit(parallel.shard(every_loss(parallel.DATA_AXIS), mesh, (rep, split, rep), rep))(state, batch, keys[4])
    for loss in LOSSES:
        ((grads_1, metrics_1), after_1), ((grads_2, metrics_2), after_2) = one[loss], two[loss]
        if after_1 is not None:
            # Adam normalises each gradient entry, so an entry whose gradient is at float-noise level
            # may step either way: compare the mean difference with the mean step instead of the max.
            out["params_diff_over_step"] = _mean_abs(after_2, after_1) / _mean_abs(after_1, state)
        out[loss] = {
            "critic_loss": [float(metrics_1["critic/loss"]), float(metrics_2["critic/loss"])],
            "actor_loss": [float(metrics_1["actor/loss"]), float(metrics_2["actor/loss"])],
            "metrics_rel_diff": _max_rel_diff(metrics_2, metrics_1),
            "grads_rel_diff": {name: _max_rel_diff(grads_2[name], grads_1[name]) for name in grads_1},
            "grad_norm_critic": float(metrics_1["critic/grad_norm"]),
        }
    fwd_critic_grads = one[LOSSES[0]][0][0]["critic"]

    # Negative control: with each device's own goals as its only negatives the loss is a different one,
    # and the comparison above must be able to tell.
    class LocalNegatives(CRL):
        def _gather(self, x):
            return x

        def _row_offset(self, local_rows):
            return 0

    local = LocalNegatives(crl_config(LOSSES[0]), axis_name=parallel.DATA_AXIS)  # against the first loss's gradients
    grads_local, _ = jax.jit(parallel.shard(local.gradients, mesh, (rep, split, rep), (rep, rep)))(state, batch, keys[4])
    out["local_negatives_critic_grads_rel_diff"] = _max_rel_diff(grads_local["critic"], fwd_critic_grads)
    return out


def check_train(run_dir: str, num_seeds: int) -> dict:
    """A whole small run on 2 devices through deepcrl.train: finite metrics, a loadable checkpoint."""
    from deepcrl import Config, train
    from deepcrl.checkpoints import load_policy_checkpoint

    config = Config(
        env="point_open",
        num_envs=8,
        unroll_length=10,
        updates_per_epoch=4,
        batch_size=16,
        buffer_size=100,
        prefill_steps=20,
        episode_length=20,
        total_env_steps=8 * 10 * 6,
        num_evals=2,
        num_eval_envs=8,
        depth=4,
        width=16,
        repr_dim=8,
        num_devices=2,
        num_seeds=num_seeds,
        run_dir=run_dir,
        progress=False,
        tensorboard=False,
        checkpoint_every=3,
    )
    result = train(config)
    _, _, _, payload = load_policy_checkpoint(run_dir)
    leaves = jax.tree_util.tree_leaves(payload)

    # Resume a copy from its epoch-3 training state: it must end with the same parameters.
    import shutil
    from pathlib import Path

    from deepcrl.loop import resume

    copy = Path(run_dir + "-resumed")
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "checkpoint")
    for path in (copy / "state").iterdir():
        if path.name != "epoch_00000003":
            shutil.rmtree(path)
    resume(copy)
    same = (copy / "checkpoint" / "agent.msgpack").read_bytes() == (Path(run_dir) / "checkpoint" / "agent.msgpack").read_bytes()
    return {
        "resumed_identical": same,
        "rows": len(result.history),
        "finite": bool(all(np.isfinite(v) for row in result.history for v in row.values())),
        "columns": sorted(result.history[-1]),
        "success": result.metrics["eval/success"],
        "checkpoint_leading_axes": sorted({int(np.shape(x)[0]) for x in leaves}),
        "devices": jax.device_count(),
    }


def check_baselines() -> dict:
    """SAC, TD3 and GCBC: three whole updates on 2 devices (half batches) against 1 device, same global batch."""
    from deepcrl.agents.gcbc import GCBC, GCBCConfig
    from deepcrl.agents.sac import SAC, SACConfig
    from deepcrl.agents.td3 import TD3, TD3Config

    mesh = parallel.make_mesh(2)
    rep, split = parallel.REPLICATED, parallel.SPLIT
    sizes = dict(state_size=5, goal_size=2, action_size=3, actor_depth=4, critic_depth=4, actor_width=16, critic_width=16)
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    obs = jax.random.normal(keys[0], (GLOBAL_BATCH, 5))
    td_batch = replay.TDBatch(
        obs=obs,
        action=jax.random.uniform(keys[1], (GLOBAL_BATCH, 3), minval=-1, maxval=1),
        goal=jax.random.normal(keys[2], (GLOBAL_BATCH, 2)),
        next_obs=obs + 0.1 * jax.random.normal(keys[3], (GLOBAL_BATCH, 5)),
        reward=(jax.random.uniform(keys[4], (GLOBAL_BATCH,)) < 0.5).astype(jnp.float32),
        terminal=(jax.random.uniform(keys[5], (GLOBAL_BATCH,)) < 0.2).astype(jnp.float32),
        relabelled=jnp.zeros((GLOBAL_BATCH,)),
    )
    bc_batch = replay.Batch(obs=td_batch.obs, action=td_batch.action, goal=td_batch.goal, offset=jnp.ones((GLOBAL_BATCH,), jnp.int32))
    out = {}
    for name, cls, cfg, batch in (
        ("sac", SAC, SACConfig, td_batch),
        ("td3", TD3, TD3Config, td_batch),
        ("gcbc", GCBC, GCBCConfig, bc_batch),
    ):
        single, sharded = cls(cfg(**sizes)), cls(cfg(**sizes), axis_name=parallel.DATA_AXIS)
        state = single.init(keys[6])
        after_1, metrics_1 = jax.jit(three_steps(single))(state, batch, keys[7])
        after_2, metrics_2 = jax.jit(parallel.shard(three_steps(sharded), mesh, (rep, split, rep), (rep, rep)))(state, batch, keys[7])
        diff = np.concatenate(
            [
                np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).ravel()
                for x, y in zip(jax.tree_util.tree_leaves(after_2), jax.tree_util.tree_leaves(after_1))
            ]
        )
        step = np.concatenate(
            [
                np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).ravel()
                for x, y in zip(jax.tree_util.tree_leaves(after_1), jax.tree_util.tree_leaves(state))
            ]
        )
        out[name] = {"params_diff_over_step": float(diff.mean() / step.mean()), "metrics_rel_diff": _max_rel_diff(metrics_2, metrics_1)}
    return out


if __name__ == "__main__":
    case = sys.argv[1]
    if case == "update":
        result = check_update()
    elif case == "baselines":
        result = check_baselines()
    elif case == "train":
        seeds = int(sys.argv[sys.argv.index("--num-seeds") + 1]) if "--num-seeds" in sys.argv else 1
        result = check_train(sys.argv[2], seeds)
    else:
        raise SystemExit(f"unknown case {case!r}")
    print(json.dumps(result))
