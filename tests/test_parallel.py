"""Data parallel over 2 simulated CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=2).

JAX fixes its device count at start-up, so the checks run in a fresh interpreter
(tests/parallel_worker.py) and report JSON measurements that are asserted on here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deepcrl import Config, ConfigError, Trainer

WORKER = Path(__file__).with_name("parallel_worker.py")
# One worker runs this module, so each module-scoped report (a subprocess of several compiles) is made once.
pytestmark = pytest.mark.xdist_group("parallel")


def _worker(*args: str) -> dict:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, str(WORKER), *args], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def update_report() -> dict:
    return _worker("update")


@pytest.mark.parametrize("loss", ["fwd_infonce", "bwd_infonce", "sym_infonce", "binary_nce"])
def test_two_devices_with_half_batches_compute_the_one_device_loss_and_gradients(update_report, loss):
    r = update_report[loss]
    one, two = r["critic_loss"]
    assert two == pytest.approx(one, rel=1e-5)
    assert r["actor_loss"][1] == pytest.approx(r["actor_loss"][0], rel=1e-5)
    assert r["metrics_rel_diff"] < 1e-4
    for name, diff in r["grads_rel_diff"].items():
        assert diff < 1e-4, (name, diff)
    assert r["grad_norm_critic"] > 1e-3  # the gradients compared are not all zero


def test_three_whole_updates_on_two_devices_follow_the_one_device_updates(update_report):
    # Adam may step an entry whose gradient is at float-noise level either way: compare on average.
    assert update_report["params_diff_over_step"] < 1e-2


def test_the_equality_check_would_catch_per_device_negatives(update_report):
    assert update_report["local_negatives_critic_grads_rel_diff"] > 1e-2


@pytest.mark.parametrize("agent", ["sac", "td3", "gcbc"])
def test_baselines_on_two_devices_follow_their_one_device_updates(agent, baselines_report):
    r = baselines_report[agent]
    assert r["params_diff_over_step"] < 1e-2, r
    # float reductions split over two devices round differently, and the metrics (means over the epoch's
    # updates) drift with them: 2.0e-3 for SAC on one CPU build (2026-12), under 1e-3 on another
    assert r["metrics_rel_diff"] < 5e-3, r


@pytest.fixture(scope="module")
def baselines_report() -> dict:
    return _worker("baselines")


def test_a_two_device_two_seed_run_trains_checkpoints_and_resumes_exactly(tmp_path):
    r = _worker("train", str(tmp_path / "run"), "--num-seeds", "2")
    assert r["devices"] == 2
    assert r["rows"] == 2 and r["finite"]
    assert {"eval/success/se", "eval/success/seed0", "eval/success/seed1"} <= set(r["columns"])
    assert 2 in r["checkpoint_leading_axes"]
    assert r["resumed_identical"]


def test_more_devices_than_visible_is_a_one_line_error_with_the_cpu_hint():
    with pytest.raises(ConfigError, match=r"num_devices=64 is more than the \d+ cpu device\(s\) JAX sees; on a CPU, simulate"):
        Trainer(Config(num_devices=64, num_envs=256, batch_size=256))


def test_environments_and_batch_must_split_evenly():
    from deepcrl.build import validate

    with pytest.raises(ConfigError, match="batch_size=100 does not split over 8 devices"):
        validate(Config(num_devices=8, num_envs=256, batch_size=100))


TINY_ARGS = [
    "--env",
    "point_open",
    "--num-envs",
    "8",
    "--unroll-length",
    "10",
    "--updates-per-epoch",
    "4",
    "--batch-size",
    "16",
    "--buffer-size",
    "100",
    "--prefill-steps",
    "20",
    "--episode-length",
    "20",
    "--total-env-steps",
    "480",
    "--num-evals",
    "2",
    "--num-eval-envs",
    "8",
    "--depth",
    "4",
    "--width",
    "16",
    "--repr-dim",
    "8",
    "--no-progress",
    "--no-tensorboard",
    "--checkpoint-every",
    "3",
]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _rows_without_time(run_dir: Path) -> list[dict]:
    from deepcrl.logger import read_metrics

    return [{k: v for k, v in row.items() if k != "time_s"} for row in read_metrics(run_dir)]


def _two_processes(argv: list[str], base: dict) -> list[tuple[str, str]]:
    """Run `python -m deepcrl.cli ARGV` as processes 0 and 1 of one jax.distributed run; their (stdout, stderr)."""
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "deepcrl.cli", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(base, JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i)),
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return outs


def test_two_processes_run_exactly_the_program_of_two_local_devices_and_resume(tmp_path):
    """Multi-host launch (jax.distributed over gloo, one CPU device per process) against one process
    with two simulated devices: the same mesh, so the same metrics and parameters, bit for bit; and a
    two-process resume from a mid-run checkpoint ends where the uninterrupted run did."""
    import shutil

    # Tiny programs, compiled alike in every process: skip XLA's expensive optimisation passes.
    base = dict(os.environ, JAX_PLATFORMS="cpu", JAX_DISABLE_MOST_OPTIMIZATIONS="1")
    train = ["train", *TINY_ARGS, "--num-devices", "2"]
    local = subprocess.run(
        [sys.executable, "-m", "deepcrl.cli", *train, "--run-dir", str(tmp_path / "local")],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(base, XLA_FLAGS="--xla_force_host_platform_device_count=2"),
    )
    assert local.returncode == 0, local.stderr[-3000:]

    outs = _two_processes([*train, "--run-dir", str(tmp_path / "multi")], base)
    assert "deepcrl run" in outs[0][1] and "deepcrl run" not in outs[1][1]  # only process 0 reports
    assert _rows_without_time(tmp_path / "multi") == _rows_without_time(tmp_path / "local")
    for name in ("agent.msgpack", "config.json"):
        want = (tmp_path / "local" / "checkpoint" / name).read_bytes()
        got = (tmp_path / "multi" / "checkpoint" / name).read_bytes()
        assert got == want.replace(str(tmp_path / "local").encode(), str(tmp_path / "multi").encode())

    # Resume both processes from the epoch-3 training state of a copy.
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "multi", resumed)
    shutil.rmtree(resumed / "checkpoint")
    for path in (resumed / "state").iterdir():
        if path.name != "epoch_00000003":
            shutil.rmtree(path)
    _two_processes(["train", "--resume", str(resumed)], base)
    assert (resumed / "checkpoint" / "agent.msgpack").read_bytes() == (tmp_path / "multi" / "checkpoint" / "agent.msgpack").read_bytes()
    assert _rows_without_time(resumed) == _rows_without_time(tmp_path / "multi")
