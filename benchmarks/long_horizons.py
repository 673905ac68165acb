"""Why does CRL fail on long mazes? Diagnose trained point-maze runs: critic, actor and data (docs/long_horizons.md).

For every run directory given (a `deepcrl train` run on a point maze, any number of seeds), at the
final checkpoint and at every training-state checkpoint kept in RUN_DIR/state/ (train with
`--checkpoint-every E --keep-checkpoints K` to keep early ones), and for every seed:

- the critic: `deepcrl.analysis.topology_scores` for each evaluation goal cell (values at every free
  cell's centre, the state at rest): Spearman correlation with minus the shortest-path distance and
  with minus the straight-line distance, scoring the actor's action ("policy") and the best of 16
  policy samples ("best16");
- the actor: evaluation success with the deterministic action (the paper's), one policy sample, and
  the best of 16 policy samples by the critic (`--eval-action-samples 16`), 128 episodes each; and on
  2,048 episodes of the training distribution (random start and goal), the success rate by the
  start-goal path distance, and the farthest 5-cell band still reached at least half the time;
- the data (training-state checkpoints with their buffer): the path distance, in cells, between the
  state and the relabelled goal of 8,192 training pairs drawn as the learner draws them; its mean, 99th
  percentile and maximum, and the fraction of pairs at least as far apart as the evaluation goals.

    deepcrl train --env point_serpentine --depth 4 --num-seeds 2 --checkpoint-every 125 --keep-checkpoints 8 --run-dir runs/lh/d4
    python benchmarks/long_horizons.py runs/lh/d4 runs/lh/d16 --out benchmarks/results/long_horizons.json

Prints one table row per (run, checkpoint, seed) and writes every number to the JSON.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from _common import header, make_parser, output_path, print_table, write_results

from deepcrl import replay
from deepcrl.analysis import critic_fn, topology_scores, value_grid
from deepcrl.checkpoints import list_train_states, load_policy_checkpoint, restore_train_state, seed_payload
from deepcrl.evaluate import make_evaluate
from deepcrl.evaluate import evaluation_policy
from deepcrl.programs import Trainer

ACTION_RULES = {"mean": 0, "sample": 1, "best16": 16}  # evaluation action rule -> --eval-action-samples
PAIRS = 8192  # training pairs drawn from a buffer for the data statistics


def all_pairs_geodesic(layout) -> np.ndarray:
    """[H, W, H, W] shortest-path distances between cells (-1 through walls)."""
    h, w = layout.height, layout.width
    out = np.full((h, w, h, w), -1, np.int64)
    for r, c in layout.free_cells:
        out[r, c] = layout.geodesic_distances([(r, c)])
    return out


def evaluate_rules(env, agent, params, key, num_envs=128) -> dict[str, float]:
    out = {}
    for name, samples in ACTION_RULES.items():
        evaluate = make_evaluate(env, num_envs, policy_takes_key=samples > 0)
        m = jax.device_get(jax.jit(lambda p, k: evaluate(evaluation_policy(agent, p, samples), k))(params, key))
        out[f"success_{name}"] = float(m["eval/success"])
        out[f"min_distance_{name}"] = float(m["eval/min_distance"])
    return out


def success_by_path_distance(env, agent, params, key, geodesic, num_envs=2048) -> dict[str, float]:
    """The deterministic policy on training episodes (the training start and goal distribution): the
    fraction that reach their goal, by the start-goal shortest-path distance in cells (buckets of 5),
    and the farthest bucket with a success rate of at least 0.5 (the horizon the actor has mastered)."""

    @jax.jit
    def run(params, key):
        states = jax.vmap(env.reset)(jax.random.split(key, num_envs))
        start, goal = states.obs[:, :2], states.goal

        def one_step(carry, _):
            states, ever = carry
            actions = agent.act(params["actor_params"], jax.vmap(env.observation)(states), deterministic=True)
            states = jax.vmap(env.step)(states, actions)
            return (states, jnp.maximum(ever, states.success)), None

        (_, ever), _ = jax.lax.scan(one_step, (states, jnp.zeros(num_envs)), None, length=env.episode_length)
        return start, goal, ever

    start, goal, ever = jax.device_get(run(params, key))
    cs, h, w = env.cell_size, env.layout.height, env.layout.width
    sc = np.clip(np.floor(start[:, ::-1] / cs).astype(int), 0, [h - 1, w - 1])
    gc = np.clip(np.floor(goal[:, ::-1] / cs).astype(int), 0, [h - 1, w - 1])
    d = geodesic[sc[:, 0], sc[:, 1], gc[:, 0], gc[:, 1]]
    out, mastered = {}, 0
    for lo in range(0, int(d.max()) + 1, 5):
        inside = (d >= lo) & (d < lo + 5)
        if inside.sum() >= 10:
            rate = float(ever[inside].mean())
            out[f"train_success_path_{lo}_{lo + 4}"] = rate
            if rate >= 0.5:
                mastered = lo + 4
    out["train_success"] = float(ever.mean())
    out["mastered_path_cells"] = float(mastered)
    return out


def critic_scores(env, agent, params) -> dict[str, float]:
    out = {}
    for rule, kwargs in (("policy", dict(action="policy")), ("best16", dict(action="best", samples=16))):
        critic = critic_fn(agent, params, env.state_size, **kwargs)
        per_goal = [
            topology_scores(value_grid(critic, env.layout, (np.array(cell[::-1], np.float64) + 0.5) * env.cell_size, env.cell_size))
            for cell in env.layout.eval_goal_cells
        ]
        for k in per_goal[0]:
            out[f"{k}_{rule}"] = float(np.mean([s[k] for s in per_goal]))
    return out


def data_scores(env, config, buffer, key, geodesic, eval_distance) -> dict[str, float]:
    batch = jax.device_get(replay.sample(buffer, key, PAIRS, config.gamma))
    cs = env.cell_size
    s_cell = np.clip(np.floor(batch.obs[:, 1::-1] / cs).astype(int), 0, [env.layout.height - 1, env.layout.width - 1])
    g_cell = np.clip(np.floor(batch.goal[:, ::-1] / cs).astype(int), 0, [env.layout.height - 1, env.layout.width - 1])
    d = geodesic[s_cell[:, 0], s_cell[:, 1], g_cell[:, 0], g_cell[:, 1]].astype(np.float64)
    return {
        "pair_path_mean": float(d.mean()),
        "pair_path_p99": float(np.percentile(d, 99)),
        "pair_path_max": float(d.max()),
        "pair_frac_eval_far": float(np.mean(d >= eval_distance)),
        "pair_offset_mean": float(batch.offset.mean()),
    }


def diagnose(run_dir: Path, quick: bool = False) -> list[dict]:
    """Every measurement of the module docstring, per (checkpoint, seed) of one run (`quick`: the
    final checkpoint only)."""
    config, env, agent, payload = load_policy_checkpoint(run_dir)
    if not hasattr(env, "layout"):
        sys.exit(f"{run_dir}: {config.env} is not a point maze; this diagnosis reads maze layouts")
    geodesic = all_pairs_geodesic(env.layout)
    starts = env.layout.start_cells
    eval_distance = min(int(geodesic[s[0], s[1], g[0], g[1]]) for s in starts for g in env.layout.eval_goal_cells)
    seeds = list(range(config.seed, config.seed + config.num_seeds))
    points = []  # (label, env_steps, payload, buffer or None)
    trainer = None
    for path in [] if quick else list_train_states(run_dir):
        trainer = trainer or Trainer(config)
        state, has_buffer = restore_train_state(path, trainer.state_shapes())
        epoch = int(np.asarray(state.epoch).max())
        points.append((f"epoch {epoch}", epoch * config.env_steps_per_epoch, state.agent.export(), state.buffer if has_buffer else None))
    final_steps = config.num_epochs * config.env_steps_per_epoch
    if not points or points[-1][1] != final_steps:
        points.append(("final", final_steps, payload, None))
    rows = []
    for label, env_steps, params_all, buffer_all in points:
        for i, seed in enumerate(seeds):
            pick = (lambda t: jax.tree_util.tree_map(lambda x: x[i], t)) if config.num_seeds > 1 else (lambda t: t)
            params = pick(params_all)
            row = {
                "run": str(run_dir),
                "checkpoint": label,
                "env_steps": env_steps,
                "seed": seed,
                "depth": config.resolved_critic_depth,
                "eval_path_cells": eval_distance,
            }
            row.update(evaluate_rules(env, agent, params, jax.random.PRNGKey(1000 + seed)))
            row.update(critic_scores(env, agent, params))
            row.update(success_by_path_distance(env, agent, params, jax.random.PRNGKey(2000 + seed), geodesic))
            if buffer_all is not None:
                row.update(data_scores(env, config, pick(buffer_all), jax.random.PRNGKey(7), geodesic, eval_distance))
            rows.append(row)
    return rows


def value_map_figure(run_dirs: list[Path], path: Path) -> None:
    """One heatmap per run: the critic (actor's action, state at rest) at every free cell's centre for the
    first evaluation goal, seed 0 of the final checkpoint; the goal starred, the start circled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(run_dirs), figsize=(3.6 * len(run_dirs), 3.9), squeeze=False)
    for ax, run_dir in zip(axes[0], run_dirs):
        config, env, agent, payload = load_policy_checkpoint(run_dir)
        params = seed_payload(config, payload, None)
        cell = env.layout.eval_goal_cells[0]
        goal = (np.array(cell[::-1], np.float64) + 0.5) * env.cell_size
        grid = value_grid(critic_fn(agent, params, env.state_size), env.layout, goal, env.cell_size)
        scores = topology_scores(grid)
        image = grid.as_image()
        walls = np.ma.masked_where(~env.layout.wall_array, np.ones_like(image))
        ax.imshow(image, cmap="viridis", origin="upper")
        ax.imshow(walls, cmap="Greys", vmin=0, vmax=1.5, origin="upper")
        ax.plot(cell[1], cell[0], marker="*", color="red", markersize=14)
        for r, c in env.layout.start_cells:
            ax.plot(c, r, marker="o", markerfacecolor="none", markeredgecolor="white", markersize=10)
        label = f"{config.agent} d{config.resolved_critic_depth}{' chain' if config.chain_goals else ''}"
        ax.set_title(f"{label}\nSpearman path {scores['spearman_geodesic']:.2f}, line {scores['spearman_euclidean']:.2f}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def curves_figure(run_dirs: list[Path], path: Path) -> None:
    """Evaluation success against env steps for each run: mean over seeds, shaded +- standard error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepcrl.logger import read_metrics

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for run_dir in run_dirs:
        config, *_ = load_policy_checkpoint(run_dir)
        rows = read_metrics(run_dir)
        x = np.array([r["env_steps"] for r in rows]) / 1e6
        y = np.array([r["eval/success"] for r in rows])
        se = np.array([r.get("eval/success/se", 0.0) for r in rows])
        label = f"{config.agent}{'+her' if config.her else ''} d{config.resolved_critic_depth}{' chain' if config.chain_goals else ''}"
        ax.plot(x, y, label=label)
        ax.fill_between(x, y - se, y + se, alpha=0.2)
    ax.set_xlabel("env steps (M)")
    ax.set_ylabel("eval success")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    parser = make_parser("long_horizons", __doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+", help="run directories of deepcrl train on point mazes")
    parser.add_argument("--value-maps", type=Path, default=None, help="PNG of each run's critic over the maze (final checkpoint, seed 0)")
    parser.add_argument("--curves", type=Path, default=None, help="PNG of each run's evaluation success curve")
    parser.add_argument("--figures-only", action="store_true", help="draw the figures, skip the diagnosis table")
    args = parser.parse_args()
    if args.value_maps is not None:
        value_map_figure(args.run_dirs, args.value_maps)
    if args.curves is not None:
        curves_figure(args.run_dirs, args.curves)
    if args.figures_only:
        return
    header("long_horizons", args.quick)
    started = time.time()
    rows = [row for run_dir in args.run_dirs for row in diagnose(run_dir, args.quick)]
    columns = [
        "run",
        "checkpoint",
        "seed",
        "success_mean",
        "success_sample",
        "success_best16",
        "train_success",
        "mastered_path_cells",
        "spearman_geodesic_policy",
        "spearman_euclidean_policy",
        "spearman_geodesic_best16",
        "pair_path_p99",
        "pair_frac_eval_far",
    ]
    print_table("long horizons: critic, actor and data", columns, [[r.get(c) for c in columns] for r in rows])
    write_results(
        output_path("long_horizons", args),
        "long_horizons",
        {"run_dirs": [str(d) for d in args.run_dirs], "quick": args.quick},
        rows,
        started,
    )


if __name__ == "__main__":
    main()
