"""A point-maze run looked at over its course: for each kept training-state checkpoint, each seed's
deterministic evaluation from the start cell (success, and the cell where its first episode ends or
sticks), its critic's topology score, and its Q map, drawn as one row of panels per seed.

Train with checkpoints kept along the way, then:

    deepcrl train ... --checkpoint-every 63 --keep-checkpoints 12 --no-save-buffer --run-dir RUN
    python experiments/over_the_run.py RUN [--episode-length 100] [--out RUN/over_the_run.png]

`--episode-length` evaluates in episodes of that many steps whatever the run trained with (a run
trained with longer episodes is judged on the task's). Prints a table and writes RUN/over_the_run.json.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import jax
import numpy as np


def main(argv: list[str] | None = None) -> int:
    from deepcrl.analysis.value_map import value_map
    from deepcrl.checkpoints import list_train_states, restore_train_state
    from deepcrl.config_files import load_config_file
    from deepcrl.evaluate import evaluation_policy, run_episodes
    from deepcrl.programs import Trainer
    from deepcrl.viz.qmap import draw_value_map

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--episode-length", type=int, help="evaluation episode length (default: the run's)")
    parser.add_argument("--episodes", type=int, default=64, help="evaluation episodes per checkpoint and seed")
    parser.add_argument("--out", type=Path, help="the figure (default RUN_DIR/over_the_run.png)")
    args = parser.parse_args(argv)

    config = load_config_file(args.run_dir / "config.json")
    trainer = Trainer(config)
    env, agent = trainer.env, trainer.agent
    eval_env = env
    if args.episode_length is not None:
        eval_env = copy.copy(env)
        eval_env.episode_length = args.episode_length
    target = trainer.state_shapes()
    paths = list_train_states(args.run_dir)
    if not paths:
        raise SystemExit(f"{args.run_dir} keeps no training-state checkpoint; train with --checkpoint-every and --keep-checkpoints")
    policy_of = jax.jit(
        lambda params, key: run_episodes(eval_env, evaluation_policy(agent, params, 0), key, args.episodes, record=lambda s: s.physics.pos)
    )
    rows = []
    maps = []
    for path in paths:
        state, _ = restore_train_state(path, target)
        exported = state.agent.export()
        epoch, env_steps = (int(np.asarray(v).ravel()[0]) for v in (state.epoch, state.env_steps))
        for i in range(config.num_seeds):
            params = exported if config.num_seeds == 1 else jax.tree_util.tree_map(lambda x: x[i], exported)
            _, final, stats, positions = policy_of(params, jax.random.PRNGKey(0))
            end = np.asarray(positions)[-1, 0]
            vmap = value_map(agent, params, env, label=f"epoch {epoch}, seed {config.seed + i}")
            rows.append(
                {
                    "epoch": epoch,
                    "env_steps": env_steps,
                    "seed": config.seed + i,
                    "success": round(float(np.mean(stats["ever"])), 4),
                    "first_episode_end": [round(float(v), 2) for v in end],
                    "spearman_geodesic": round(vmap.scores["spearman_geodesic"], 4),
                    "spearman_euclidean": round(vmap.scores["spearman_euclidean"], 4),
                }
            )
            maps.append(vmap)
    print("| env steps | seed | success | first episode ends at (x, y) | Spearman path | Spearman straight |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        x, y = r["first_episode_end"]
        print(
            f"| {r['env_steps']:,} | {r['seed']} | {r['success']:.2f} | ({x:.1f}, {y:.1f}) | {r['spearman_geodesic']:.2f} | {r['spearman_euclidean']:.2f} |"
        )
    (args.run_dir / "over_the_run.json").write_text(json.dumps(rows, indent=2) + "\n")

    from matplotlib.figure import Figure

    n, seeds = len(paths), config.num_seeds
    fig = Figure(figsize=(2.2 * n, 2.4 * seeds), dpi=100, layout="constrained")
    for k, (vmap, r) in enumerate(zip(maps, rows)):
        ax = fig.add_subplot(seeds, n, (k % seeds) * n + k // seeds + 1)
        draw_value_map(fig, ax, vmap, colorbar=False)
        ax.plot(*r["first_episode_end"], marker="x", color="white", markersize=9, mew=2)
        ax.set_title(f"{r['env_steps'] / 1e6:.1f}M, seed {r['seed']}: {r['success']:.2f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    out = args.out or args.run_dir / "over_the_run.png"
    fig.savefig(out)
    print(f"wrote {out} (white x: where the first deterministic episode ends)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
