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
