"""Finding 6 of the paper, measured: does a deeper critic's value follow the maze's corridors?

For every finished run given (run folders or sweep folders) and every seed of it, the topology score of
`deepcrl qmap` (the Spearman correlation of the critic's value at each free cell's centre with minus the
shortest-path distance to the goal, and with minus the straight-line distance), for the layout's
farthest evaluation goal; with --learners, also each collector/learner run's learner (RUN_DIR/learner).
Writes a JSON of every score, the mean and standard error over seeds per critic depth, and one figure:
the value maps of one seed per depth above the scores against depth.

    python experiments/topology.py sweeps/serpentine_depth --learners \\
        --json experiments/results/topology_serpentine.json --figure docs/img/findings/qmaps.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def run_dirs(paths: list[str]) -> list[Path]:
    from deepcrl.sweep import read_sweep

    out = []
    for raw in paths:
        path = Path(raw)
        if (path / "sweep.json").is_file():
            out += [Path(e.run_dir) for e in read_sweep(path).entries.values() if (Path(e.run_dir) / "checkpoint").is_dir()]
        elif (path / "checkpoint").is_dir():
            out.append(path)
        else:
            sys.exit(f"topology.py: {str(path)!r} is neither a finished run nor a sweep folder")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="finished run folders or sweep folders")
    parser.add_argument("--learners", action="store_true", help="also score each run's learner (RUN_DIR/learner)")
    parser.add_argument("--json", required=True, help="where the scores go")
    parser.add_argument("--figure", help="the maps and scores figure (.png or .svg)")
    args = parser.parse_args(argv)

    from deepcrl.analysis.value_map import value_map_of_run
    from deepcrl.config_files import load_config_file
    from deepcrl.metrics import mean_and_se

    rows, maps = [], {}
    for run in run_dirs(args.paths):
        targets = [("collector", run)] + (
            [("learner", run / "learner")] if args.learners and (run / "learner" / "checkpoint").is_dir() else []
        )
        for role, target in targets:
            config = load_config_file(run / "config.json")
            depth = config.resolved_critic_depth if role == "collector" else config.learner_depth
            for seed in range(config.seed, config.seed + config.num_seeds):
                vmap = value_map_of_run(target, run_seed=seed)
                rows.append(
                    {"run": str(target), "role": role, "critic_depth": depth, "seed": seed, **{k: float(v) for k, v in vmap.scores.items()}}
                )
                maps.setdefault((role, depth), vmap)
                print(
                    f"{target} seed {seed}: {role} depth {depth}: path {vmap.scores['spearman_geodesic']:.3f}, line {vmap.scores['spearman_euclidean']:.3f}"
                )
    summary = {}
    for role, depth in sorted({(r["role"], r["critic_depth"]) for r in rows}):
        mine = [r for r in rows if (r["role"], r["critic_depth"]) == (role, depth)]
        entry = {"seeds": len(mine)}
        for key in ("spearman_geodesic", "spearman_euclidean", "topology_gap"):
            mean, se = mean_and_se(np.array([r[key] for r in mine]))
            entry[key] = {"mean": round(float(mean), 4), "se": round(float(se), 4)}
        summary[f"{role} depth {depth}"] = entry
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"summary": summary, "scores": rows}, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    if args.figure:
        write_figure(maps, summary, args.figure)
    return 0


def write_figure(maps: dict, summary: dict, out: str) -> None:
    from matplotlib.figure import Figure

    from deepcrl.viz.qmap import draw_value_map

    shown = sorted(k for k in maps if k[0] == "collector")
    fig = Figure(figsize=(4.0 * len(shown), 8.0), dpi=110, layout="constrained")
    grid = fig.add_gridspec(2, len(shown), height_ratios=[1.3, 1.0])
    for i, key in enumerate(shown):
        ax = fig.add_subplot(grid[0, i])
        vmap = maps[key]
        draw_value_map(fig, ax, vmap, colorbar=False)
        ax.set_title(
            f"critic depth {key[1]} (first seed)\npath {vmap.scores['spearman_geodesic']:.2f}, line {vmap.scores['spearman_euclidean']:.2f}",
            fontsize=9,
        )
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[1, :])
    for role, style in (("collector", "-"), ("learner", ":")):
        for key, label in (("spearman_geodesic", "minus the path distance"), ("spearman_euclidean", "minus the straight line")):
            points = sorted((int(name.split()[-1]), e[key]["mean"], e[key]["se"]) for name, e in summary.items() if name.startswith(role))
            if not points:
                continue
            xs, means, ses = (np.array(v, float) for v in zip(*points))
            what = "the run's critic" if role == "collector" else "a learner's critic (trained on another depth's data)"
            ax.errorbar(xs, means, yerr=ses, linestyle=style, marker="o", capsize=3, label=f"Spearman with {label}: {what}")
    depths = sorted({k[1] for k in maps})
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set_xlabel("critic depth (log scale)")
    ax.set_ylabel("topology score (mean ± s.e. over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle("The critic's value for the far goal (star) over the maze, and how well it follows the corridors", fontsize=10)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)


if __name__ == "__main__":
    raise SystemExit(main())
