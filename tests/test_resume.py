"""Runs that survive: kill -9 and resume is bitwise the same run; SIGTERM checkpoints and exits 0;
NaN stops the run with one line and keeps the last good checkpoint; damaged checkpoints are reported.

These run the real `deepcrl` console script in subprocesses, on a tiny open-arena config whose epochs
take milliseconds, so a run is long in epochs (and easy to interrupt) but short in seconds.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from deepcrl.checkpoints import TrainStateWriter, list_train_states, restore_train_state, save_train_state
from deepcrl.config import Config
from deepcrl.errors import ConfigError
from deepcrl.loop import resume
from deepcrl.programs import Trainer
from deepcrl.config_files import load_config_file

TINY_SETTINGS = dict(
    env="point_open",
    width=16,
    depth=4,
    num_envs=8,
    unroll_length=10,
    updates_per_epoch=4,
    batch_size=16,
    buffer_size=200,
    prefill_steps=20,
    episode_length=50,
    total_env_steps=24000,
    num_evals=15,
    num_eval_envs=8,
    checkpoint_every=5,
)  # 300 epochs of 80 env steps: long in epochs (easy to interrupt), a few seconds in time


def tiny(**overrides) -> list[str]:
    """Command-line flags of the tiny run, with overrides."""
    args = []
    for name, value in {**TINY_SETTINGS, **overrides}.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args + ["--no-progress", "--no-tensorboard"]


TINY = tiny()


def deepcrl(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepcrl.cli", *args], capture_output=True, text=True, timeout=300, **kwargs)


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "deepcrl.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the run ended before {path} appeared: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout} s"
        time.sleep(0.02)


def metrics_without_time(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "uninterrupted"
    done = deepcrl("train", *TINY, "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stderr
    return run_dir


def test_sigkill_then_resume_is_bitwise_the_same_run(uninterrupted, tmp_path):
    run_dir = tmp_path / "killed"
    proc = start("train", *TINY, "--run-dir", str(run_dir))
    wait_for(run_dir / "state" / "epoch_00000100", proc)
    proc.kill()  # SIGKILL: no handler runs
    proc.wait()
    newest = list_train_states(run_dir)[-1]
    assert 100 <= int(newest.name.split("_")[1]) < 300
    rows_before = len(metrics_without_time(run_dir))

    done = deepcrl("train", "--resume", str(run_dir), "--no-progress")
    assert done.returncode == 0, done.stderr

    assert (run_dir / "checkpoint" / "agent.msgpack").read_bytes() == (uninterrupted / "checkpoint" / "agent.msgpack").read_bytes()
    resumed_rows = metrics_without_time(run_dir)
    assert resumed_rows == metrics_without_time(uninterrupted)  # no duplicate or missing rows, same values
    assert len(resumed_rows) == 15 and rows_before < 15
    assert len(list_train_states(run_dir)) == 2  # keep_checkpoints


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_checkpoints_and_exits_zero_then_resumes(uninterrupted, tmp_path, signum):
    run_dir = tmp_path / "terminated"
    proc = start("train", *TINY, "--run-dir", str(run_dir))
    wait_for(run_dir / "state" / "epoch_00000050", proc)
    sent = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert time.monotonic() - sent < 30
    assert signal.Signals(signum).name in out + err and f"deepcrl train --resume {run_dir}" in out + err
    newest = list_train_states(run_dir)[-1]
    assert int(newest.name.split("_")[1]) >= 50
    assert not (run_dir / "checkpoint").exists()  # the final policy checkpoint comes only at the end

    trainer = Trainer(load_config_file(run_dir / "config.json"))
    target = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    state, with_buffer = restore_train_state(newest, target)
    assert with_buffer and int(state.epoch) == int(newest.name.split("_")[1])

    done = deepcrl("train", "--resume", str(run_dir), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert (run_dir / "checkpoint" / "agent.msgpack").read_bytes() == (uninterrupted / "checkpoint" / "agent.msgpack").read_bytes()


def test_nan_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "nan"
    # An absurd learning rate overflows the gradients within a few SGD steps.
    done = deepcrl("train", *tiny(checkpoint_every=1, actor_lr=1e8, critic_lr=1e8), "--run-dir", str(run_dir))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepcrl: error: ") and "Traceback" not in done.stderr
    assert "became NaN or Inf at SGD step" in lines[0]
    saved = list_train_states(run_dir)
    if saved:  # every checkpoint kept must hold finite parameters
        trainer = Trainer(load_config_file(run_dir / "config.json"))
        state, _ = restore_train_state(saved[-1], jax.eval_shape(trainer.init, jax.random.PRNGKey(0)))
        assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(state.agent.critic_params))
        assert str(saved[-1]) in lines[0]
    else:
        assert "no checkpoint had been saved yet" in lines[0]
    assert not (run_dir / "checkpoint").exists()


def test_damaged_checkpoint_is_reported_never_loaded(tmp_path):
    config = Config(**{**_tiny_kwargs(), "run_dir": str(tmp_path / "r")})
    trainer = Trainer(config)
    state = trainer.init(jax.random.PRNGKey(0))
    path = save_train_state(tmp_path, state, keep=2, save_buffer=True)
    target = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    restore_train_state(path, target)  # intact: loads

    data = bytearray((path / "train_state.msgpack").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "train_state.msgpack").write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="damaged"):
        restore_train_state(path, target)

    (path / "train_state.msgpack").write_bytes(bytes(data[: len(data) // 3]))  # truncated
    with pytest.raises(ConfigError, match="damaged"):
        restore_train_state(path, target)

    (path / "meta.json").unlink()
    with pytest.raises(ConfigError, match="meta.json"):
        restore_train_state(path, target)


def test_a_checkpoint_written_while_training_goes_on_holds_the_state_it_was_given(tmp_path, monkeypatch):
    """The writer's thread writes after the next epoch has run on (and, donated, overwritten) the state."""
    import threading

    import deepcrl.checkpoints.train_state as checkpoint_module

    config = Config(**{**_tiny_kwargs(), "run_dir": str(tmp_path / "r")})
    trainer = Trainer(config)
    state = trainer.init(jax.random.PRNGKey(0))
    expected = [np.array(x) for x in jax.tree_util.tree_leaves(jax.device_get(state))]
    epoch_done = threading.Event()
    real_write = checkpoint_module.write_train_state

    def write_after_the_next_epoch(*args, **kwargs):
        assert epoch_done.wait(timeout=60)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "write_train_state", write_after_the_next_epoch)
    writer = TrainStateWriter(tmp_path / "r", keep=2, save_buffer=True)
    path = writer.save(state)
    assert not path.exists()  # training goes on before the checkpoint is written
    state, _ = jax.block_until_ready(trainer.epoch(state))
    epoch_done.set()
    writer.wait()
    writer.close()
    restored, with_buffer = restore_train_state(path, trainer.state_shapes())
    assert with_buffer and int(restored.epoch) == 0 and int(state.epoch) == 1
    got = [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(restored))]
    assert len(got) == len(expected) and all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_resume_without_buffer_refills_and_finishes(tmp_path):
    run_dir = tmp_path / "nobuffer"
    done = deepcrl("train", *tiny(total_env_steps=1600, num_evals=4), "--no-save-buffer", "--run-dir", str(run_dir))
    assert done.returncode == 0, done.stderr
    saved = list_train_states(run_dir)
    assert [p.name for p in saved] == ["epoch_00000015", "epoch_00000020"]
    assert not (saved[-1] / "buffer.msgpack").exists()
    # Pretend the run died after epoch 15's checkpoint: drop what came later, and resume.
    import shutil

    shutil.rmtree(saved[-1])
    shutil.rmtree(run_dir / "checkpoint")
    result = resume(run_dir)
    assert (run_dir / "checkpoint" / "agent.msgpack").exists()
    assert [row["epoch"] for row in result.history] == [5, 10, 15, 20]


def test_resume_refuses_flags_that_change_the_run(uninterrupted, tmp_path):
    done = deepcrl("train", "--resume", str(uninterrupted), "--depth", "8")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "depth=8" in done.stderr and "contradicts" in done.stderr
    done = deepcrl("train", "--resume", str(tmp_path / "nothing-here"))
    assert done.returncode == 2 and "no config.json" in done.stderr
    assert not (tmp_path / "nothing-here").exists()


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    import deepcrl.checkpoints.train_state as checkpoint_module
    from deepcrl.errors import CheckpointWriteError
    from deepcrl.loop import train

    real_fsync = checkpoint_module.os.fsync
    calls = {"n": 0}

    def fsync_that_fills_the_disk(fd):
        calls["n"] += 1
        if calls["n"] > 2:  # the first checkpoint (state + buffer) is written; the second runs out of space
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(checkpoint_module.os, "fsync", fsync_that_fills_the_disk)
    run_dir = tmp_path / "full"
    config = Config(**{**_tiny_kwargs(), "total_env_steps": 1600, "num_evals": 4, "run_dir": str(run_dir)})
    with pytest.raises(CheckpointWriteError, match="No space left on device") as error:
        train(config)
    assert "epoch_00000005 is intact" in str(error.value) and "\n" not in str(error.value)
    assert [p.name for p in (run_dir / "state").iterdir()] == ["epoch_00000005"]  # no half-written folder
    monkeypatch.undo()
    trainer = Trainer(config)
    state, _ = restore_train_state(run_dir / "state" / "epoch_00000005", jax.eval_shape(trainer.init, jax.random.PRNGKey(0)))
    assert int(state.epoch) == 5


def test_too_little_disk_space_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 20, 9 << 20, 1 << 20))
    run_dir = tmp_path / "tiny-disk"
    done_code = None
    from deepcrl.cli import main

    done_code = main(["train", *TINY, "--run-dir", str(run_dir)])
    assert done_code == 2
    assert not run_dir.exists()


def _tiny_kwargs() -> dict:
    return {**TINY_SETTINGS, "progress": False, "tensorboard": False}


if os.name != "posix":  # signals and SIGKILL as used here are POSIX
    pytestmark = pytest.mark.skip("POSIX only")
