"""Named bundles of settings: `deepcrl train --preset NAME [FLAGS]`.

A preset replaces the built-in defaults; a `--config FILE` and flags on the command line override it
(flags > file > preset > defaults). Presets say nothing about the task or the depth, so one preset
serves every task: `deepcrl train --preset paper --env ant_big_maze --depth 64`.

- `paper`: the paper's training settings (the paper's hyperparameter table and its reference code): 512
  environments, 62-step collections (31,744 env steps per epoch), 800 SGD steps of batch 512 per
  collection (update-to-data about 1:40), a 10,000-step FIFO buffer per environment prefilled with
  1,000 steps, width 256, 100 evaluations of 128 episodes, 100M environment steps. Meant for a GPU;
  docs/tasks.md gives each task's recipe (its step budget) and the time it took.
- `smoke`: the same pipeline shrunk to run on a laptop CPU in a few minutes on any task (MuJoCo
  tasks included): a check that the task, the agent and the tools work, not a result.
"""

from __future__ import annotations

PRESETS: dict[str, dict[str, object]] = {
    "paper": {
        "num_envs": 512,  # parallel environments
        "unroll_length": 62,  # 512 x 62 = 31,744 env steps per collection
        "updates_per_epoch": 800,  # SGD steps per collection (UTD about 1:40)
        "batch_size": 512,  # the paper's runs (the reference code's default is 256)
        "buffer_size": 10_000,  # steps per environment, FIFO
        "prefill_steps": 1_000,  # steps per environment before the first update
        "width": 256,
        "depth": 4,  # the paper's baseline; pass --depth 16/32/64 (or --critic-depth/--actor-depth) to scale
        "repr_dim": 64,
        "total_env_steps": 100_000_000,  # 100M; the paper's tasks use 100M-400M (docs/tasks.md)
        "num_evals": 100,
        "num_eval_envs": 128,
        "checkpoint_every": 10,  # epochs between training-state checkpoints (each epoch is 31,744 steps)
    },
    "smoke": {
        "num_envs": 16,
        "unroll_length": 50,
        "updates_per_epoch": 10,
        "batch_size": 64,
        "buffer_size": 1_000,  # holds one 1,000-step MuJoCo episode per environment
        "prefill_steps": 50,
        "width": 64,
        "depth": 4,
        "total_env_steps": 16 * 50 * 4,  # 4 epochs
        "num_evals": 2,
        "num_eval_envs": 4,
        "checkpoint_every": 0,
    },
}
PRESET_NAMES = tuple(PRESETS)
