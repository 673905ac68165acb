"""The run directory: its default name, and the checks made before anything is compiled or written.

    RUN_DIR/config.json        the run's Config (what --resume reads)
    RUN_DIR/metrics.csv        one row per evaluation (deepcrl.logger), TensorBoard events in tensorboard/
    RUN_DIR/checkpoint/        the policy checkpoint of the finished run (checkpoints/policy.py)
    RUN_DIR/state/epoch_N/     training-state checkpoints for --resume (checkpoints/train_state.py)

Default name: runs/<task>[-<agent>]-d<depth>-s<seeds>-<YYYYmmdd-HHMMSS>, e.g.
runs/point_u_maze-d8-s0-20261201-101500, runs/ant_big_maze-sac-her-d4-s0-4-...: <task> is the env
(with a `maze:` layout's path folded in), <agent> is left out for crl, the default; d<depth> is the
depth of both networks, or d<actor>-<critic> when they differ; s<seed> or s<first>-<last> for
--num-seeds.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path
from typing import Any

import jax

from deepcrl.agents import get_agent
from deepcrl.config import Config
from deepcrl.errors import ConfigError


def default_run_dir(config: Config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    env = config.env if config.layout is None else f"{config.env}-{config.layout.replace(':', '_').replace('/', '_')}"
    seeds = f"s{config.seed}" if config.num_seeds == 1 else f"s{config.seed}-{config.seed + config.num_seeds - 1}"
    agent = "" if config.agent == Config().agent else "-" + get_agent(config.agent).label(config).replace(" + ", "-").lower()
    actor, critic = config.resolved_actor_depth, config.resolved_critic_depth
    depth = f"d{actor}" if actor == critic else f"d{actor}-{critic}"
    return Path("runs") / f"{env}{agent}-{depth}-{seeds}-{stamp}"


def prepare_run_dir(config: Config) -> tuple[Config, Path]:
    """Resolve and check the output folder before anything is compiled; ConfigError if unusable.

    Returns the config with `run_dir` (and a `maze:` layout's path) made explicit, and the folder."""
    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
    if (run_dir / "config.json").exists() or (run_dir / "metrics.csv").exists():
        raise ConfigError(f"run_dir={str(run_dir)!r} already holds a run; choose another --run-dir")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run_dir={str(run_dir)!r} is a file, not a folder; choose another --run-dir")
    # Find the deepest existing ancestor and check we can write there, without creating anything.
    probe = run_dir
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"run_dir={str(run_dir)!r} is not writable ({str(probe)!r} does not accept new files); choose another --run-dir")
    layout = config.layout
    if layout is not None and layout.startswith("maze:"):
        layout = "maze:" + str(Path(layout[5:]).expanduser().resolve())
    return dataclasses.replace(config, run_dir=str(run_dir), layout=layout), run_dir


def checkpoint_bytes(state_shapes: Any, save_buffer: bool) -> int:
    """Bytes one training-state checkpoint of a state of these shapes takes (arrays only; msgpack adds little)."""
    if not save_buffer:
        state_shapes = state_shapes.replace(buffer=None)
    return sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state_shapes))


def check_disk_space(config: Config, state_shapes: Any, run_dir: Path) -> None:
    """ConfigError if the run directory's disk cannot hold the checkpoints the run will keep."""
    probe = run_dir
    while not probe.exists():
        probe = probe.parent
    need = checkpoint_bytes(state_shapes, config.save_buffer) * (config.keep_checkpoints + 1) + (16 << 20)  # + one being written, + logs
    free = shutil.disk_usage(probe).free
    if free < need:
        raise ConfigError(
            f"run_dir={str(run_dir)!r} has {free / 2**20:.0f} MiB free, but this run's checkpoints need about {need / 2**20:.0f} MiB; "
            f"free space, choose another --run-dir, lower --keep-checkpoints or use --no-save-buffer"
        )
