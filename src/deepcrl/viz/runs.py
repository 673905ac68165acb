"""Runs read back for figures: each run directory's config, per-seed curves and final scores, grouped
into the settings a figure compares (runs that differ only in their seeds are one group).

    runs = load_runs(["sweeps/my-sweep", "runs/one-run"])   # sweep folders, run folders, or folders of runs
    groups = group_runs(runs)                                # one Group per setting, its seeds pooled
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepcrl.config_files import load_config_file
from deepcrl.errors import ConfigError
from deepcrl.logger import read_metrics
from deepcrl.metrics import FINAL_SCORE_EVALS, mean_and_se

# Fields that never tell two groups apart: seeds are pooled, the rest does not change what is learnt.
NOT_COMPARED = ("seed", "num_seeds", "run_dir", "progress", "tensorboard", "checkpoint_every", "keep_checkpoints", "save_buffer")
NUMERIC_AXES = (
    "depth",
    "actor_depth",
    "critic_depth",
    "width",
    "actor_width",
    "critic_width",
    "batch_size",
    "repr_dim",
    "num_envs",
    "updates_per_epoch",
    "total_env_steps",
    "learner_depth",
    "learner_width",
)


@dataclass
class Run:
    """One run directory: its config, every evaluation's metrics per seed, its parameter count."""

    run_dir: Path
    config: Any  # deepcrl.config.Config
    env_steps: np.ndarray  # [evals]
    time_s: np.ndarray  # [evals] wall clock since the start of training
    seeds: dict[int, dict[str, np.ndarray]]  # seed -> metric name -> [evals]
    params: int | None = None  # actor + critic parameters (from the policy checkpoint), None if unfinished


@dataclass
class Group:
    """Runs with the same settings but their seeds: what a curve or a point of a figure shows."""

    settings: dict[str, Any]  # the compared settings (varying ones in `label`)
    label: str  # the settings that differ between the groups of a figure, e.g. "depth 16, agent sac+her"
    runs: list[Run] = field(default_factory=list)

    @property
    def config(self):
        return self.runs[0].config

    @property
    def num_seeds(self) -> int:
        return sum(len(r.seeds) for r in self.runs)

    def curves(self, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(env steps, wall clock, values [seeds, evals]) over the evaluations every seed has."""
        n = min(len(r.env_steps) for r in self.runs)
        values = np.array([s[metric][:n] for r in self.runs for s in r.seeds.values()])
        time_s = np.mean([r.time_s[:n] for r in self.runs], axis=0)
        return self.runs[0].env_steps[:n], time_s, values

    def final(self, metric: str) -> tuple[float, float, np.ndarray]:
        """(mean, standard error, per-seed values) of the metric averaged over each seed's last 5 evaluations."""
        _, _, values = self.curves(metric)
        per_seed = values[:, -FINAL_SCORE_EVALS:].mean(axis=1)
        mean, se = mean_and_se(per_seed)
        return mean, se, per_seed

    @property
    def params(self) -> int | None:
        counts = {r.params for r in self.runs}
        return counts.pop() if len(counts) == 1 else None


def _params(run_dir: Path, num_seeds: int) -> int | None:
    path = run_dir / "checkpoint" / "agent.msgpack"
    if not path.is_file():
        return None
    import jax
    from flax import serialization

    payload = serialization.msgpack_restore(path.read_bytes())
    total = sum(int(np.size(x)) for k in ("actor_params", "critic_params") if k in payload for x in jax.tree_util.tree_leaves(payload[k]))
    return total // num_seeds


def read_run(run_dir: str | Path) -> Run:
    run_dir = Path(run_dir)
    config = load_config_file(run_dir / "config.json")
    rows = read_metrics(run_dir)
    if not rows:
        raise ConfigError(f"run {str(run_dir)!r} has no evaluation in metrics.csv yet")
    # the evaluation's metrics (and a collector / learner run's learner's: learner/eval/...)
    names = [k for k in rows[0] if k.startswith(("eval/", "learner/eval/")) and "/" not in k.removeprefix("learner/")[5:]]
    seeds: dict[int, dict[str, np.ndarray]] = {}
    for i in range(config.num_seeds):
        seed = config.seed + i
        suffix = "" if config.num_seeds == 1 else f"/seed{seed}"
        seeds[seed] = {name: np.array([r[name + suffix] for r in rows]) for name in names}
    return Run(
        run_dir=run_dir,
        config=config,
        env_steps=np.array([r["env_steps"] for r in rows]),
        time_s=np.array([r["time_s"] for r in rows]),
        seeds=seeds,
        params=_params(run_dir, config.num_seeds),
    )


def _run_dirs(path: Path) -> list[Path]:
    if (path / "sweep.json").is_file():  # a sweep: its points in grid order
        from deepcrl.sweep import read_sweep

        return [Path(e.run_dir) for e in read_sweep(path).entries.values() if (Path(e.run_dir) / "metrics.csv").is_file()]
    if (path / "config.json").is_file() and (path / "metrics.csv").is_file():
        return [path]
    if path.is_dir():
        return sorted(p.parent for p in path.glob("*/metrics.csv") if (p.parent / "config.json").is_file())
    return []


def load_runs(paths: list[str | Path]) -> list[Run]:
    """Every run under `paths` (sweep folders, run folders, folders holding run folders); ConfigError if none."""
    runs = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigError(f"{str(path)!r} does not exist; give sweep folders, run folders or folders of runs")
        found = _run_dirs(path)
        if not found:
            raise ConfigError(f"{str(path)!r} holds no run (no config.json with a metrics.csv) and no sweep")
        runs += [read_run(p) for p in found]
    return runs


# A learner (--learner-depth) never changes its collector's run, bit for bit: the collector's own metrics
# pool over these; the learner's (learner/...) do not.
LEARNER_FIELDS = ("learner_depth", "learner_width")


def _comparable(config, ignore: tuple[str, ...] = (), split: tuple[str, ...] = ()) -> dict[str, Any]:
    """The settings that tell `config`'s run apart; `split` ("depth", "width"): compared as the actor's and
    the critic's own (an unset actor or critic depth is --depth), for sets of runs that set them apart."""
    values = {k: v for k, v in dataclasses.asdict(config).items() if k not in NOT_COMPARED and k not in ignore}
    for size in split:
        values[f"actor_{size}"] = getattr(config, f"resolved_actor_{size}")
        values[f"critic_{size}"] = getattr(config, f"resolved_critic_{size}")
        values.pop(size)
    from deepcrl.agents import get_agent

    values["agent"] = get_agent(config.agent).label(config).lower().replace(" ", "")  # crl, sac+her, td3, ...
    values.pop("her")
    return values


def group_runs(runs: list[Run], ignore: tuple[str, ...] = ()) -> list[Group]:
    """Runs grouped by their settings (seeds pooled), labelled by the settings that differ between groups;
    settings named in `ignore` do not tell groups apart (they are left out of the groups' settings)."""
    groups: dict[str, Group] = {}
    # runs that set an actor or critic depth (width) of their own are compared by both, whatever --depth says
    split = tuple(
        size
        for size in ("depth", "width")
        if any(getattr(r.config, f"{net}_{size}") is not None for r in runs for net in ("actor", "critic"))
    )
    for run in runs:
        settings = _comparable(run.config, ignore, split)
        key = json.dumps(settings, sort_keys=True, default=str)
        group = groups.setdefault(key, Group(settings=settings, label=""))
        seen = {s for r in group.runs for s in r.seeds}
        repeated = sorted(seen & set(run.seeds))
        if repeated:  # the same setting and seed twice (a run copied, or two sweeps of the same point): count it once
            if not ignore:  # pooling over ignored settings repeats seeds by design (a learner's collector)
                print(f"deepcrl plot: {run.run_dir} repeats seed(s) {repeated} of {group.runs[0].run_dir}; left out", file=sys.stderr)
            run = dataclasses.replace(run, seeds={s: v for s, v in run.seeds.items() if s not in seen})
            if not run.seeds:
                continue
        group.runs.append(run)
    return labelled(list(groups.values()))


def labelled(groups: list[Group]) -> list[Group]:
    """Copies of `groups` labelled by the settings that differ between them (the task's name if none)."""
    varying = varying_fields(groups)
    return [
        dataclasses.replace(
            g, label=", ".join(f"{k.replace('_', ' ')} {_text(g.settings[k])}" for k in varying) or _text(g.settings["env"])
        )
        for g in groups
    ]


def varying_fields(groups: list[Group]) -> list[str]:
    """The settings that differ between groups, in Config order."""
    if not groups:
        return []
    keys = list(groups[0].settings)
    return [k for k in keys if len({json.dumps(g.settings.get(k), default=str) for g in groups}) > 1]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
