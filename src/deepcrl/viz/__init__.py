"""Figures from run directories and sweeps (no training code; runs are read from disk).

- `runs`: run directories read back (config, per-seed curves, parameter counts) and grouped by setting;
- `figures`: learning curves, scaling plots, heatmaps and the paper's overlay, one question each;
- `plot_runs`: every figure a set of runs can answer, written as PNG and SVG with figures.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from deepcrl.viz.figures import FigureInfo, figures_for, paper_curves
from deepcrl.viz.runs import Group, Run, group_runs, load_runs


def plot_runs(paths: list[str | Path], out: str | Path, paper: str | None = None) -> list[FigureInfo]:
    """Read the runs under `paths`, draw every figure they answer into `out` (NAME.png, NAME.svg), list
    them in out/figures.json; returns the figures' descriptions."""
    if paper is not None:
        paper_curves(paper)  # an unknown task fails before anything is read or written
    groups = group_runs(load_runs(list(paths)))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    infos = []
    for fig, info in figures_for(groups, paper):
        for suffix in ("png", "svg"):
            path = out / f"{info.name}.{suffix}"
            tmp = path.with_name(f".{path.name}.tmp.{suffix}")
            fig.savefig(tmp, format=suffix)
            tmp.replace(path)
            info.files.append(str(path))
        infos.append(info)
    listing = [{"name": i.name, "question": i.question, "curves": i.curves, "files": i.files} for i in infos]
    (out / "figures.json").write_text(json.dumps({"groups": [g.label for g in groups], "figures": listing}, indent=2) + "\n")
    return infos


__all__ = ["FigureInfo", "Group", "Run", "group_runs", "load_runs", "paper_curves", "plot_runs"]
