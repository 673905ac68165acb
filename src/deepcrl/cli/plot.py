"""`deepcrl plot SWEEP_OR_RUNS... --out DIR [--paper TASK]`: the figures of deepcrl.viz, written as PNG and SVG."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import tyro

PLOT_DESCRIPTION = (
    "Figures from sweeps and runs: learning curves (success and time at goal against env steps and wall clock, "
    "bands one standard error over seeds), the final score against each swept size and the parameter count, "
    "heatmaps over two swept sizes, and with --paper TASK the paper's Figure 1 curves of TASK beside these runs. "
    "Runs that differ only in their seeds are pooled. Writes DIR/NAME.png, DIR/NAME.svg and DIR/figures.json."
)


@dataclass(frozen=True)
class PlotArgs:
    paths: tyro.conf.Positional[tuple[str, ...]]  # sweep folders, run folders, or folders holding runs
    out: str = "figures"  # folder the figures are written to
    paper: str | None = None  # overlay the paper's Figure 1 curves of this task (ant_big_maze, humanoid, ...)


def plot_command(argv: Sequence[str], parse) -> int:
    from deepcrl.viz import plot_runs

    args = parse(PlotArgs, argv, prog="deepcrl plot", description=PLOT_DESCRIPTION)
    infos = plot_runs(list(args.paths), args.out, paper=args.paper)
    for info in infos:
        curves = ", ".join(f"{k} ({v})" for k, v in info.curves.items())
        print(f"{info.files[0]}: {info.question} [{curves}]")
    print(f"wrote {len(infos)} figures (PNG and SVG) and figures.json to {args.out}")
    return 0


QMAP_DESCRIPTION = (
    "The critic's value over the maze for one goal (default: the evaluation goal farthest along the corridors), drawn over "
    "the walls: point mazes (the point at rest) and the ant and humanoid mazes (the robot standing, moved to each position). "
    "Prints the topology score: the Spearman correlation of the value at each free cell's centre with minus the "
    "shortest-path distance to the goal, beside the one with minus the straight-line distance."
)


@dataclass(frozen=True)
class QmapArgs:
    run_dir: tyro.conf.Positional[str]  # a finished run directory (its policy checkpoint)
    goal: str | None = None  # the goal as X,Y in world units (None: the farthest evaluation goal)
    out: str | None = None  # the figure (.png or .svg; None: RUN_DIR/qmap.png)
    run_seed: int | None = None  # which seed of a --num-seeds run (None: its first)
    action: str = "policy"  # the action the critic scores: policy (its deterministic action), zero, or best (of 16 samples)
    resolution: int = 8  # positions per cell side in the figure (the score uses the cells' centres)
    json: bool = False  # print the scores as JSON
    pca: bool = (
        False  # also the embedding plot: phi(s, a) along an evaluation episode on its first 3 principal components (CRL), OUT with _pca
    )


def qmap_command(argv: Sequence[str], parse) -> int:
    import json
    from pathlib import Path

    from deepcrl.analysis.value_map import value_map_of_run
    from deepcrl.errors import ConfigError
    from deepcrl.viz.qmap import write_qmap

    args = parse(QmapArgs, argv, prog="deepcrl qmap", description=QMAP_DESCRIPTION)
    goal = None
    if args.goal is not None:
        try:
            goal = [float(v) for v in args.goal.split(",")]
        except ValueError:
            raise ConfigError(f"goal={args.goal!r} is not allowed; give it as X,Y (two numbers)") from None
        if len(goal) != 2:
            raise ConfigError(f"goal={args.goal!r} is not allowed; give it as X,Y (two numbers)")
    out = Path(args.out) if args.out is not None else Path(args.run_dir) / "qmap.png"
    if out.suffix.lower() not in (".png", ".svg"):
        raise ConfigError(f"out={str(out)!r} is not allowed; the figure's name must end in .png or .svg")
    vmap = value_map_of_run(args.run_dir, goal=goal, run_seed=args.run_seed, resolution=args.resolution, action=args.action)
    pca_path = None
    if args.pca:
        from deepcrl.analysis.embedding import embedding_of_run
        from deepcrl.viz.qmap import write_pca

        emb = embedding_of_run(args.run_dir, run_seed=args.run_seed)  # before anything is written: a TD agent fails here
    path = write_qmap(vmap, out)
    if args.pca:
        pca_path = write_pca(emb, out.with_name(f"{out.stem}_pca{out.suffix}"))
    scores = {k: round(v, 4) for k, v in vmap.scores.items()}
    if args.json:
        extra = {} if pca_path is None else {"pca_figure": str(pca_path), "pca_explained": [round(float(v), 4) for v in emb.explained]}
        direction = {"direction": vmap.direction} if vmap.direction else {}
        print(json.dumps({"goal": [float(v) for v in vmap.goal], "figure": str(path), **scores, **direction, **extra}, indent=2))
    else:
        print(
            f"topology score (goal {vmap.goal[0]:g},{vmap.goal[1]:g}; {len(vmap.cells.values)} cells): Spearman with minus the "
            f"shortest-path distance {scores['spearman_geodesic']:.3f}, with minus the straight-line distance "
            f"{scores['spearman_euclidean']:.3f} (gap {scores['topology_gap']:+.3f})"
        )
        if vmap.direction:
            print(vmap.direction)
        print(f"wrote {path}")
        if pca_path is not None:
            ex = ", ".join(f"{v:.0%}" for v in emb.explained)
            print(f"wrote {pca_path} (phi along one evaluation episode; the 3 components hold {ex} of its variance)")
    return 0
