"""The figures of `deepcrl plot`, one question each, drawn with matplotlib (Agg, no display):

- learning curves: success and time at goal against environment steps and against wall-clock time,
  one line per setting, the band one standard error of the mean over seeds;
- scaling: the final score (each seed's mean of its last 5 evaluations) against each swept size (depth,
  width, batch size, ...) and against the parameter count, one line per value of the other settings;
- heatmaps: the final score over a two-field grid (actor depth x critic depth, batch size x depth);
- the paper's overlay: the paper's Figure 1 curves of a task beside ours, over the fraction of training.

Each function returns the matplotlib Figure and a `FigureInfo` (its question, its curves and their
points), which `deepcrl plot` writes as PNG and SVG and lists in figures.json.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from deepcrl.viz.runs import LEARNER_FIELDS, NUMERIC_AXES, Group, group_runs, labelled, varying_fields

METRICS = {  # metric -> (axis label, file-name part)
    "eval/success": ("success rate (episodes that reach the goal)", "success"),
    "eval/time_at_goal": ("time at goal (steps within the goal radius)", "time_at_goal"),
    # collector / learner runs (--learner-depth): the learner, trained only on the collector's data
    "learner/eval/success": ("learner's success rate (trained only on the collector's data)", "learner_success"),
    "learner/eval/time_at_goal": ("learner's time at goal (trained only on the collector's data)", "learner_time_at_goal"),
}
SE_NOTE = "line: mean over seeds; band / bars: one standard error of the mean"


@dataclass
class FigureInfo:
    name: str  # file name without suffix
    question: str  # what the figure answers, its title
    curves: dict[str, int] = field(default_factory=dict)  # legend label -> number of points
    files: list[str] = field(default_factory=list)


def _figure(width: float = 7.0, height: float = 4.5):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    return fig, fig.add_subplot(1, 1, 1)


def _seeds_note(groups: list[Group]) -> str:
    counts = sorted({g.num_seeds for g in groups})
    return f"{'/'.join(map(str, counts))} seed{'s' if counts != [1] else ''} per line; {SE_NOTE}"


def _task(groups: list[Group]) -> str:
    envs = sorted({g.config.env + ("" if g.config.layout is None else f" ({g.config.layout})") for g in groups})
    return ", ".join(envs)


def learning_curves(groups: list[Group], metric: str, x: str = "env_steps"):
    """One line per group: the metric at each evaluation against env steps (x="env_steps") or wall clock (x="time")."""
    label, short = METRICS[metric]
    fig, ax = _figure()
    x_label = "environment steps" if x == "env_steps" else "wall-clock time since training started (s)"
    info = FigureInfo(
        name=f"curves_{short}_vs_{'steps' if x == 'env_steps' else 'time'}",
        question=f"{short.replace('_', ' ')} during training, against {x_label.split(' (')[0]}: {_task(groups)}",
    )
    for g in groups:
        steps, time_s, values = g.curves(metric)
        xs = steps if x == "env_steps" else time_s
        mean = values.mean(axis=0)
        se = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.zeros_like(mean)
        (line,) = ax.plot(xs, mean, marker="o", markersize=3, label=f"{g.label} (n={len(values)})")
        ax.fill_between(xs, mean - se, mean + se, color=line.get_color(), alpha=0.2, linewidth=0)
        info.curves[g.label] = len(xs)
    ax.set_xlabel(x_label)
    ax.set_ylabel(label)
    ax.set_title(info.question, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=_seeds_note(groups), title_fontsize=7)
    return fig, info


def _others(groups: list[Group], exclude: tuple[str, ...]) -> dict[str, list[Group]]:
    """Groups split by the values of the varying settings not in `exclude`: one line (or panel) each."""
    rest = [k for k in varying_fields(groups) if k not in exclude]
    lines: dict[str, list[Group]] = {}
    for g in groups:
        key = ", ".join(f"{k.replace('_', ' ')} {g.settings[k]}" for k in rest)
        lines.setdefault(key, []).append(g)
    return lines


def scaling(groups: list[Group], metric: str, axis: str):
    """The final score against one swept setting (or `params`, the parameter count), a line per other setting."""
    label, short = METRICS[metric]
    fig, ax = _figure()
    what = "parameters (actor + critic)" if axis == "params" else axis.replace("_", " ")
    info = FigureInfo(name=f"scaling_{short}_vs_{axis}", question=f"final {short.replace('_', ' ')} against {what}: {_task(groups)}")
    for key, line_groups in _others(groups, NUMERIC_AXES if axis == "params" else (axis,)).items():
        key = key or str(line_groups[0].settings["agent"])
        points = []
        for g in line_groups:
            xv = g.params if axis == "params" else _resolved(g, axis)
            if xv is None:
                continue
            mean, se, _ = g.final(metric)
            points.append((xv, mean, se))
        points.sort()
        if not points:
            continue
        xs, means, ses = (np.array(v, float) for v in zip(*points))
        ax.errorbar(xs, means, yerr=ses, marker="o", capsize=3, label=key)
        info.curves[key] = len(xs)
    ax.set_xscale("log", base=2 if axis != "params" else 10)
    if axis != "params":
        values = sorted({_resolved(g, axis) for g in groups})
        ax.set_xticks(values, [str(v) for v in values])
    ax.set_xlabel(what + ("" if axis == "params" else " (log scale)"))
    ax.set_ylabel(f"final {label.split(' (')[0]} (mean of the last 5 evaluations)")
    ax.set_title(info.question, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=_seeds_note(groups), title_fontsize=7)
    return fig, info


def _resolved(g: Group, axis: str):
    c = g.config
    return {
        "depth": c.depth,
        "actor_depth": c.resolved_actor_depth,
        "critic_depth": c.resolved_critic_depth,
        "width": c.width,
        "actor_width": c.resolved_actor_width,
        "critic_width": c.resolved_critic_width,
    }.get(axis, g.settings.get(axis))


def _grid_panel(ax, cells: dict[tuple[Any, Any], tuple[float, float]], vmin: float, vmax: float, rows: str, cols: str):
    """One heatmap panel: cells (row value, column value) -> (mean, s.e.), each annotated; returns the image."""
    r_values = sorted({r for r, _ in cells})
    c_values = sorted({c for _, c in cells})
    grid = np.full((len(r_values), len(c_values)), np.nan)
    for (r, c), (mean, se) in cells.items():
        grid[r_values.index(r), c_values.index(c)] = mean
        dark = vmax > vmin and (mean - vmin) / (vmax - vmin) < 0.5  # viridis is dark below its middle
        ax.text(
            c_values.index(c),
            r_values.index(r),
            f"{mean:.2f}\n±{se:.2f}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if dark else "black",
        )
    image = ax.imshow(grid, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-9, aspect="auto")
    ax.set_xticks(range(len(c_values)), [str(v) for v in c_values])
    ax.set_yticks(range(len(r_values)), [str(v) for v in r_values])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    return image, int(np.isfinite(grid).sum())


def heatmap(groups: list[Group], metric: str, rows: str, cols: str):
    """The final score over the grid of two settings (one panel per value of the other varying settings)."""
    from matplotlib.figure import Figure

    label, short = METRICS[metric]
    panels = _others(groups, (rows, cols))
    fig = Figure(figsize=(4.2 * len(panels) + 1.2, 4.2), dpi=110, layout="constrained")
    info = FigureInfo(
        name=f"heatmap_{short}_{rows}_x_{cols}",
        question=f"final {short.replace('_', ' ')} over {rows.replace('_', ' ')} x {cols.replace('_', ' ')}: {_task(groups)}",
    )
    finals = {id(g): g.final(metric)[:2] for g in groups}
    vmin, vmax = min(f[0] for f in finals.values()), max(f[0] for f in finals.values())
    image = None
    for i, (title, panel) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        cells = {(_resolved(g, rows), _resolved(g, cols)): finals[id(g)] for g in panel}
        image, count = _grid_panel(ax, cells, vmin, vmax, rows.replace("_", " "), cols.replace("_", " "))
        ax.set_title(title or info.question, fontsize=9)
        info.curves[title or "all"] = count
    fig.colorbar(image, ax=fig.axes, label=f"final {label.split(' (')[0]} (mean ± s.e. over seeds)")
    fig.suptitle(info.question, fontsize=10)
    return fig, info


def collector_learner(collectors: list[Group], learners: list[Group], metric: str = "eval/success"):
    """The paper's finding 8 as one grid: the final score of a policy by the depth of the network that
    collected its data (rows) and the depth of the one that learned it (columns). The diagonal holds the
    collectors' own scores (collected and learned by one network), the rest the learners' (--learner-depth)."""
    from matplotlib.figure import Figure

    label, short = METRICS[metric]
    cells = {(g.config.resolved_critic_depth, g.config.resolved_critic_depth): g.final(metric)[:2] for g in collectors}
    cells.update({(g.config.resolved_critic_depth, g.config.learner_depth): g.final("learner/" + metric)[:2] for g in learners})
    info = FigureInfo(
        name=f"collector_learner_{short}",
        question=f"final {short.replace('_', ' ')} by the depth that collected the data and the depth that learned from it: {_task(collectors)}",
    )
    fig = Figure(figsize=(5.6, 4.6), dpi=110, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    means = [m for m, _ in cells.values()]
    image, info.curves["all"] = _grid_panel(
        ax, cells, min(means), max(means), "collector depth (acts, fills the buffer)", "learner depth (learns from it)"
    )
    fig.colorbar(image, ax=ax, label=f"final {label.split(' (')[0]} (mean ± s.e. over seeds)")
    ax.set_title(info.question + "\ndiagonal: the collector itself; off it: a learner on the collector's buffer", fontsize=8)
    return fig, info


def paper_curves(task: str) -> dict[str, Any]:
    """The paper's Figure 1 data of `task` (time at goal out of 1,000 steps, per evaluation, per depth)."""
    data = json.loads(resources.files("deepcrl.viz").joinpath("paper_curves/time_at_goal.json").read_text())
    if task not in data:
        from deepcrl.errors import ConfigError

        raise ConfigError(f"--paper {task!r}: the paper's Figure 1 has no such task; choose one of: {', '.join(data)}")
    return data[task]


def paper_overlay(groups: list[Group], task: str):
    """Our time-at-goal curves beside the paper's Figure 1 curves of `task`, over the fraction of training done
    (the paper's runs are 100M-400M steps on GPUs; ours may be far shorter), time at goal as a fraction of the episode."""
    paper = paper_curves(task)
    fig, ax = _figure(8.0, 4.8)
    info = FigureInfo(name=f"paper_{task}", question=f"time at goal against the paper's Figure 1 ({paper['title']})")
    colours = itertools.cycle([f"C{i}" for i in range(10)])
    for depth, curve in paper["depths"].items():
        mean, se = np.array(curve["mean"]) / 1000.0, np.array(curve["se"]) / 1000.0
        xs = np.arange(1, len(mean) + 1) / len(mean)
        colour = next(colours)
        ax.plot(xs, mean, linestyle="--", color=colour, label=f"paper: depth {depth} (CRL)")
        ax.fill_between(xs, mean - se, mean + se, color=colour, alpha=0.12, linewidth=0)
        info.curves[f"paper depth {depth}"] = len(xs)
    for g in groups:
        steps, _, values = g.curves("eval/time_at_goal_frac")
        xs = steps / g.config.total_env_steps
        mean = values.mean(axis=0)
        se = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.zeros_like(mean)
        colour = next(colours)
        ax.plot(xs, mean, marker="o", markersize=3, color=colour, label=f"deepcrl: {g.label} (n={len(values)})")
        ax.fill_between(xs, mean - se, mean + se, color=colour, alpha=0.2, linewidth=0)
        info.curves[f"deepcrl {g.label}"] = len(xs)
    ax.set_xlabel("fraction of the run's environment steps done")
    ax.set_ylabel("time at goal / episode length")
    ax.set_title(info.question + f"\nours: {_task(groups)}; the paper's runs are 100M-400M env steps", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, title="dashed: the paper (published data); solid: these runs; " + SE_NOTE, title_fontsize=6)
    return fig, info


def _having(groups: list[Group], metric: str) -> list[Group]:
    """The groups whose every seed logged `metric`, relabelled by the settings that differ among them."""
    return labelled([g for g in groups if all(metric in s for r in g.runs for s in r.seeds.values())])


def figures_for(groups: list[Group], paper: str | None = None) -> list[tuple[Any, FigureInfo]]:
    """Every figure the groups can answer: curves always; scaling for each varying size (and parameters);
    heatmaps for each pair of varying sizes; the paper's overlay if asked.

    A learner (--learner-depth) never changes its collector's run, so the collector's own metrics pool
    runs over the learner's settings (a depth sweep whose runs carry learners of other depths is a depth
    sweep); the learner's metrics (learner/...) are drawn for the runs that have a learner, by its settings."""
    runs = [r for g in groups for r in g.runs]
    collectors = group_runs(runs, ignore=LEARNER_FIELDS) if set(varying_fields(groups)) & set(LEARNER_FIELDS) else groups
    per_metric = {m: _having(groups if m.startswith("learner/") else collectors, m) for m in METRICS}
    per_metric = {m: gs for m, gs in per_metric.items() if gs}
    out = []
    for metric, gs in per_metric.items():
        out.append(learning_curves(gs, metric, "env_steps"))
        out.append(learning_curves(gs, metric, "time"))
    for metric, gs in per_metric.items():
        sizes = [k for k in varying_fields(gs) if k in NUMERIC_AXES]
        for axis in sizes:
            out.append(scaling(gs, metric, axis))
        if sizes and len({g.params for g in gs if g.params is not None}) > 1:
            out.append(scaling(gs, metric, "params"))
        for rows, cols in itertools.combinations(sizes, 2):
            out.append(heatmap(gs, metric, rows, cols))
    learners = per_metric.get("learner/eval/success", [])
    same_width = [g for g in learners if g.config.learner_width in (None, g.config.width)]
    if same_width and all(g.config.actor_depth is None and g.config.critic_depth is None for g in same_width):
        for metric in ("eval/success", "eval/time_at_goal"):
            if metric in per_metric and set(varying_fields(per_metric[metric])) <= {"depth"}:  # depth the only difference
                out.append(collector_learner(per_metric[metric], _having(same_width, "learner/" + metric), metric))
    if paper is not None:
        out.append(paper_overlay(_having(collectors, "eval/time_at_goal_frac"), paper))
    return out
