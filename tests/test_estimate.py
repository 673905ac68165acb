"""deepcrl.estimate: the analytic memory estimate against XLA's buffer assignment, and its arithmetic
(seeds multiply, devices divide the batch rows and environments but not the parameters, remat helps
only deep rolled networks)."""

from __future__ import annotations

import dataclasses
import math

import jax
import pytest

from deepcrl import estimate, replay
from deepcrl.config import Config
from deepcrl.build import build_task_and_agent as build_agent

from cli_helpers import dry_run_rows

# The accuracy the module docstring promises (calibrated at widths 64-512; measured 0.94-1.45x there).
LOW, HIGH = 0.5, 2.0


def _nbytes(tree) -> int:
    return int(sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree)))


@pytest.mark.parametrize(
    "depth,remat",
    [
        (8, False),  # the default layout at depth <= 16: unrolled
        (32, False),  # rolled scan, the networks' default residual policy
        (32, True),  # rolled scan, remat
    ],
)
def test_estimate_is_within_a_factor_of_xla(depth, remat):
    config = Config(env="point_open", depth=depth, width=64, batch_size=128, remat=remat)
    env, agent = build_agent(config)
    xla = estimate.update_memory_from_xla(agent, config.batch_size)
    est = estimate.estimate_memory(config, env.state_size, env.goal_size, env.action_size, num_devices=1)
    ratio = est.update_temp_bytes / xla["temp"]
    assert LOW <= ratio <= HIGH, (depth, remat, est.update_temp_bytes, xla)
    # XLA's arguments are exactly parameters + Adam state + the batch (jit drops the unused goal offsets)
    # + the PRNG key (8 bytes).
    batch_bytes = config.batch_size * 4 * (env.state_size + env.action_size + env.goal_size)
    assert xla["argument"] - batch_bytes - 8 == est.state_bytes


def test_state_and_buffer_bytes_are_exact():
    config = Config(env="point_open", depth=8, width=48, actor_width=32, num_envs=64, buffer_size=300, prefill_steps=50, episode_length=50)
    env, agent = build_agent(config)
    s, g, a = env.state_size, env.goal_size, env.action_size
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    params = _nbytes((state.actor_params, state.critic_params, state.log_alpha))
    assert estimate.param_bytes(config, s, g, a) == params
    assert estimate.param_bytes(config, s, g, a) + estimate.optimizer_bytes(config, s, g, a) == _nbytes(state)
    buffer = jax.eval_shape(lambda: replay.init_buffer(config.buffer_size, config.num_envs, s, a, g))
    assert estimate.buffer_bytes(config, s, g, a) == _nbytes(buffer)


def test_remat_saves_memory_at_depth_64_and_not_when_unrolled():
    deep = Config(env="point_open", depth=64, width=256, batch_size=256)
    on = estimate.activation_bytes(deep, remat=True)
    off = estimate.activation_bytes(deep, remat=False)
    assert on < 0.6 * off
    assert estimate.activation_bytes(dataclasses.replace(deep, remat=True)) == on
    # The saved part grows with depth without remat, much more slowly with it.
    d256 = dataclasses.replace(deep, depth=256)
    assert estimate.activation_bytes(d256, remat=False) - off > 2 * (estimate.activation_bytes(d256, remat=True) - on)
    # Depth 8 is unrolled by default: remat changes nothing (measured: XLA schedules the whole network).
    shallow = Config(env="point_open", depth=8)
    assert estimate.activation_bytes(shallow, remat=True) == estimate.activation_bytes(shallow, remat=False)
    # ... unless the scan is rolled.
    rolled = dataclasses.replace(shallow, network_unroll=1)
    assert estimate.activation_bytes(rolled, remat=True) < estimate.activation_bytes(rolled, remat=False)


def test_devices_divide_rows_and_envs_not_parameters_and_seeds_multiply():
    c1 = Config(env="point_open", depth=64, width=256, batch_size=512, num_envs=512, energy="dot")
    s, g, a = 4, 2, 2
    one = estimate.estimate_memory(c1, s, g, a, num_devices=1)
    four = estimate.estimate_memory(dataclasses.replace(c1, num_devices=4), s, g, a)
    assert four.num_devices == 4 and four.batch_rows_per_device == 128 and four.envs_per_device == 128
    assert four.param_bytes == one.param_bytes and four.optimizer_bytes == one.optimizer_bytes
    assert four.gradient_bytes == one.gradient_bytes
    assert four.buffer_bytes - 8 == (one.buffer_bytes - 8) // 4  # 8: the two replicated counters
    # Everything but the logits scales with the rows: logits are (B / D) x B, i.e. also / D here.
    assert four.saved_bytes == one.saved_bytes // 4
    assert four.logits_bytes == one.logits_bytes // 4 == 2 * 128 * 512 * 4  # dot energy: 2 float32 [b, B] arrays
    assert four.activation_bytes == pytest.approx(one.activation_bytes / 4, rel=1e-6)
    # The logits are (B / D) x B, not (B / D)^2: the negatives are all-gathered.
    assert four.logits_bytes == estimate.logits_bytes(c1, rows=128, batch=512)
    assert four.logits_bytes != estimate.logits_bytes(c1, rows=128, batch=128)
    # Seeds multiply everything.
    two = estimate.estimate_memory(dataclasses.replace(c1, num_devices=4, num_seeds=2), s, g, a)
    for name in ("param_bytes", "optimizer_bytes", "gradient_bytes", "buffer_bytes", "activation_bytes", "activation_bytes_other_remat"):
        assert getattr(two, name) == 2 * getattr(four, name), name
    assert two.total_bytes == 2 * four.total_bytes
    # num_devices 0: every device JAX sees.
    assert estimate.estimate_memory(dataclasses.replace(c1, num_devices=0), s, g, a).num_devices == jax.device_count()


def test_bfloat16_halves_the_saved_matmul_outputs_only():
    c = Config(env="point_open", depth=64, width=256, batch_size=256)
    f32 = estimate.activation_breakdown(c)
    bf16 = estimate.activation_breakdown(dataclasses.replace(c, matmul_dtype="bfloat16"))
    assert bf16["working"] == f32["working"] and bf16["logits"] == f32["logits"]
    if estimate.critic_policy(c) == "dots":  # matmul outputs are what the rolled scan keeps
        assert 0.5 * f32["saved"] < bf16["saved"] < 0.7 * f32["saved"]
    assert estimate.activation_bytes(dataclasses.replace(c, matmul_dtype="bfloat16"), remat=True) == estimate.activation_bytes(
        c, remat=True
    )  # remat keeps float32 block inputs


def test_dry_run_shows_memory_per_device_and_writes_nothing(workdir, tmp_path, capsys):
    from cli_helpers import run_main

    flags = [
        "--env",
        "point_open",
        "--depth",
        "32",
        "--width",
        "32",
        "--num-envs",
        "16",
        "--batch-size",
        "128",
        "--buffer-size",
        "200",
        "--prefill-steps",
        "50",
        "--episode-length",
        "50",
        "--num-devices",
        "4",
        "--num-seeds",
        "2",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    code, out, err = run_main(["train", "--dry-run", *flags], capsys)
    assert code == 0, err
    assert list(workdir.iterdir()) == [] and not (tmp_path / "run").exists()
    rows = dry_run_rows(out)
    config = Config(
        env="point_open",
        depth=32,
        width=32,
        num_envs=16,
        batch_size=128,
        buffer_size=200,
        prefill_steps=50,
        episode_length=50,
        num_devices=4,
        num_seeds=2,
    )
    m = estimate.estimate_memory(config, 4, 2, 2)
    fb = estimate.format_bytes
    # A plan for more devices than this machine has is allowed, and says so.
    assert rows["devices / seeds"].startswith("4 (--num-devices 4") and rows["devices / seeds"].endswith("/ 2")
    assert rows["per device"] == "4 envs, 32 batch rows per update (logits 32 x 128)"
    assert rows["buffer memory per device"] == fb(m.buffer_bytes)
    assert rows["params + optimizer per device"].startswith(fb(m.state_bytes))
    assert rows["gradients per update"] == fb(m.gradient_bytes)
    assert rows["activations per update"].startswith(
        f"{fb(m.activation_bytes)} (remat off; with remat on: {fb(m.activation_bytes_other_remat)}"
    )
    assert m.activation_bytes_other_remat < m.activation_bytes  # depth 32 is rolled: remat pays
    assert rows["memory per device (estimate)"].startswith(fb(m.total_bytes))
    # The dry run's own buffer row is the whole buffer of one seed; per device it is 1/4 of that, x 2 seeds.
    assert rows["buffer memory"] == f"{200 * 16 * 4 * 9 / 1e6:,.2f} MB"
