"""A sweep's grid: which runs it holds, what each is called and how it is configured.

    spec = spec_from_flags(["--depth", "4,16", "--seed", "0,1,2", "--env", "point_u_maze"])
    spec = load_sweep_file("study.yaml")        # the same content as a file (grid:, settings:, preset:)
    points = expand(spec, sweep_dir)            # one Point per run directory, every config validated

A flag holding a comma-separated list (`--depth 4,16,64`) is a grid axis; a flag with one value
(`--env ant`) is a setting every point shares. `--agent sac+her` is `--agent sac --her` inside one
axis value. The grid is the product of its axes, in the order given. Seeds (`--seed 0,1,2`) are
batched into one program per point (`--num-seeds`, seed 0 to 2 in one run directory) unless
`batch_seeds` is off, when each seed is its own run.

A sweep file (YAML or JSON):

    preset: paper                 # optional: the settings start from a preset (deepcrl/presets.py)
    batch_seeds: true             # optional (default true)
    grid:                         # the swept fields, each a list; a value may be a mapping of several fields
      depth: [4, 16, 64]
      agent: [crl, sac+her]
      seed: [0, 1, 2]
    settings:                     # the same for every point
      env: ant_big_maze
      total_env_steps: 100000000
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from deepcrl.config import Config, check_field_type, field_types, short_repr
from deepcrl.config_files import config_from_mapping, parse_config_text, preset_config
from deepcrl.errors import ConfigError, read_user_text

# Settings the sweep owns for each point: where it writes, and no progress bar (runs go side by side).
OWNED_FIELDS = ("run_dir", "progress")
SEED_AXIS = "seed"
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs: its axes (in order), the settings every point shares, the preset they start from."""

    axes: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (axis name, its values); a value is a field value or a mapping of fields
    settings: tuple[tuple[str, Any], ...] = ()  # (Config field, value) shared by every point
    preset: str | None = None  # the preset the settings start from (None: the built-in defaults)
    batch_seeds: bool = True  # the seeds of a point run in one program (--num-seeds) rather than one run each

    def to_dict(self) -> dict[str, Any]:
        return {
            "grid": {name: list(values) for name, values in self.axes},
            "settings": dict(self.settings),
            "preset": self.preset,
            "batch_seeds": self.batch_seeds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "sweep") -> "SweepSpec":
        return spec_from_mapping(data, source)

    def fingerprint(self) -> str:
        """8 hex digits that change with anything that changes the sweep's runs."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]

    def base_config(self) -> Config:
        base = preset_config(self.preset) if self.preset is not None else Config()
        return config_from_mapping(dict(self.settings), base=base)


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its run directory's name, the swept values it takes, its whole Config."""

    name: str  # the run directory's name under SWEEP_DIR/runs/
    values: dict[str, Any]  # each axis's value (field values; seeds as `seed` and `num_seeds`)
    overrides: dict[str, Any]  # the Config fields the axes set (a mapping value spread out; `seed`, `num_seeds`)
    config: Config  # the run's Config, run_dir set

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(range(self.config.seed, self.config.seed + self.config.num_seeds))


# ----------------------------------------------------------------------------------------------
# Values from text (flags) and from files
# ----------------------------------------------------------------------------------------------


def parse_field_text(name: str, text: str) -> Any:
    """The value of Config field `name` written as `text` on the command line; ConfigError (one line) if
    it is not of the field's type. `none` is None for fields that may be unset."""
    kind, optional = field_types()[name]
    low = text.strip().lower()
    if optional and low in ("none", "null"):
        return None
    need = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[kind]
    bad = ConfigError(f"{name}={text!r} is not allowed; it must be {need}" + (" or none" if optional else ""))
    if kind is bool:
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise bad
    if kind is str:
        if not text:
            raise bad
        return text
    try:
        number = float(text.replace("_", ""))
    except ValueError:
        raise bad from None
    if kind is int:
        if not math.isfinite(number) or not number.is_integer():
            raise bad
        return check_field_type(name, int(number))
    return check_field_type(name, number)


def _axis_value(name: str, value: Any, source: str) -> Any:
    """An axis value checked: a field value of the axis's field, or a mapping of fields (bundled values)."""
    if isinstance(value, Mapping):
        known = field_types()
        for key, v in value.items():
            if key not in known or key in OWNED_FIELDS:
                raise ConfigError(f"{source}: axis {name!r}: {short_repr(key)} is not a setting a sweep can set")
            check_field_type(key, v)
        return dict(value)
    if name not in field_types():
        raise ConfigError(f"{source}: axis {name!r} is not a setting; an axis that is not one must list mappings of settings")
    if name == "agent" and isinstance(value, str) and value.endswith("+her"):
        return {"agent": value[: -len("+her")], "her": True}
    return check_field_type(name, value)


def _check_name(name: Any, source: str) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"{source}: {short_repr(name)} is not a setting name")
    name = name.replace("-", "_")
    if name in OWNED_FIELDS:
        raise ConfigError(f"{source}: {name} is set by the sweep for each point (SWEEP_DIR/runs/NAME, no progress bar); leave it out")
    if name not in field_types():
        known = ", ".join(sorted(set(field_types()) - set(OWNED_FIELDS)))
        raise ConfigError(f"{source}: unknown setting {name!r}; allowed: {known}")
    return name


def spec_from_mapping(data: Any, source: str = "sweep file") -> SweepSpec:
    """A SweepSpec from the content of a sweep file (grid:, settings:, preset:, batch_seeds:)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping with grid: and settings:, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in ("grid", "settings", "preset", "batch_seeds"))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: grid, settings, preset, batch_seeds")
    grid = data.get("grid") or {}
    settings = data.get("settings") or {}
    if not isinstance(grid, Mapping) or not isinstance(settings, Mapping):
        raise ConfigError(f"{source}: grid: and settings: must each be a mapping of setting names to values")
    axes = []
    for raw_name, values in grid.items():
        name = raw_name.replace("-", "_") if isinstance(raw_name, str) else raw_name
        if not isinstance(name, str):
            raise ConfigError(f"{source}: {short_repr(raw_name)} is not an axis name")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"{source}: grid axis {name!r} must be a non-empty list of values, got {short_repr(values)}")
        if name in field_types():
            _check_name(name, source)
        checked = tuple(_axis_value(name, v, source) for v in values)
        if len({json.dumps(v, sort_keys=True) for v in checked}) < len(checked):
            raise ConfigError(f"{source}: grid axis {name!r} lists a value twice: {short_repr(list(values))}")
        axes.append((name, checked))
    fixed = []
    for raw_name, value in settings.items():
        name = _check_name(raw_name, source)
        fixed.append((name, check_field_type(name, value)))
    swept = {k for _, values in axes for v in values for k in (v if isinstance(v, dict) else {})} | {n for n, _ in axes}
    both = sorted(swept & {n for n, _ in fixed})
    if both:
        raise ConfigError(f"{source}: {both[0]} is both swept (grid) and fixed (settings); keep one")
    preset = data.get("preset")
    if preset is not None:
        preset_config(preset)  # an unknown name fails here
    batch = data.get("batch_seeds", True)
    if not isinstance(batch, bool):
        raise ConfigError(f"{source}: batch_seeds={short_repr(batch)} is not allowed; it must be true or false")
    return SweepSpec(axes=tuple(axes), settings=tuple(fixed), preset=preset, batch_seeds=batch)


def load_sweep_file(path: str | Path) -> SweepSpec:
    source = str(path)
    suffix = Path(source).suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(f"sweep file {source!r} has an unknown format; its name must end in .yaml, .yml or .json")
    text = read_user_text(source, "sweep file")
    try:
        data = parse_config_text(text, "json" if suffix == ".json" else "yaml")
    except ConfigError as e:
        raise ConfigError(f"sweep file {source!r} {e}") from None
    return spec_from_mapping(data, f"sweep file {source!r}")


def spec_from_flags(flags: Sequence[str], base: SweepSpec | None = None) -> SweepSpec:
    """A SweepSpec from Config flags (`--depth 4,16 --env ant --her`), over `base` (a sweep file's):
    a flag replaces what the file said of its field, a list making it an axis and one value a setting."""
    axes = dict(base.axes) if base else {}
    settings = dict(base.settings) if base else {}
    i, flags = 0, list(flags)
    while i < len(flags):
        arg = flags[i]
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"unexpected argument {arg!r}; settings are given as --name VALUE or --name V1,V2,... (a grid axis)")
        flag, _, inline = arg[2:].partition("=")
        name = flag.replace("-", "_")
        value_text = inline if "=" in arg else None
        if value_text is None and name not in field_types() and name.startswith("no_") and field_types().get(name[3:], (None,))[0] is bool:
            name, value_text = name[3:], "false"
        elif value_text is None and field_types().get(name, (None,))[0] is bool and (i + 1 >= len(flags) or flags[i + 1].startswith("--")):
            value_text = "true"
        elif value_text is None:
            if i + 1 >= len(flags) or flags[i + 1].startswith("--"):
                _check_name(name, "sweep")
                raise ConfigError(f"--{flag} needs a value (--{flag} VALUE, or --{flag} V1,V2,... to sweep it)")
            i += 1
            value_text = flags[i]
        _check_name(name, "sweep")
        texts = value_text.split(",")
        if any(not t.strip() for t in texts):
            raise ConfigError(f"--{flag} {value_text!r}: an empty value in the list; write V1,V2,... without empty entries")
        axes.pop(name, None)
        settings.pop(name, None)
        values = [_axis_value(name, parse_field_text(name, t), "sweep") for t in texts]
        if len(values) == 1:  # one value: a setting (`--agent sac+her` sets agent and her)
            settings.update(values[0] if isinstance(values[0], dict) else {name: values[0]})
        else:
            if len({json.dumps(v, sort_keys=True) for v in values}) < len(values):
                raise ConfigError(f"--{flag} {value_text!r} lists a value twice")
            axes[name] = tuple(values)
        i += 1
    preset, batch = (base.preset, base.batch_seeds) if base else (None, True)
    return spec_from_mapping(
        {"grid": {k: list(v) for k, v in axes.items()}, "settings": settings, "preset": preset, "batch_seeds": batch}, "sweep"
    )


# ----------------------------------------------------------------------------------------------
# Expansion into points
# ----------------------------------------------------------------------------------------------


def value_label(value: Any) -> str:
    """How an axis value reads in a run directory's name and a figure's legend."""
    if isinstance(value, dict):
        if set(value) == {"agent", "her"} and value["her"] is True:
            return f"{value['agent']}+her"
        return "+".join(f"{k}{value_label(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def _seed_groups(seeds: Sequence[int], batch: bool) -> list[tuple[int, int]]:
    """(first seed, number of seeds) of each run: consecutive seeds together when batching."""
    if not batch:
        return [(s, 1) for s in seeds]
    groups: list[list[int]] = []
    for s in seeds:
        if groups and s == groups[-1][-1] + 1:
            groups[-1].append(s)
        else:
            groups.append([s])
    return [(g[0], len(g)) for g in groups]


def expand(spec: SweepSpec, sweep_dir: str | Path) -> list[Point]:
    """Every point of the sweep, in grid order (the first axis slowest), its Config built and its field
    types checked (ranges and combinations: `deepcrl.build.prepare`, run by the sweep before launching)."""
    base = spec.base_config()
    axes = [(n, v) for n, v in spec.axes if n != SEED_AXIS]
    seed_values = dict(spec.axes).get(SEED_AXIS)
    if seed_values is not None and spec.batch_seeds and base.num_seeds != 1:
        raise ConfigError(
            f"--seed {','.join(map(str, seed_values))} with --num-seeds {base.num_seeds}: the sweep batches a point's seeds itself; "
            "give the seeds as a list (or --no-batch-seeds to run each seed's --num-seeds program apart)"
        )
    seed_runs = _seed_groups(list(seed_values), spec.batch_seeds) if seed_values is not None else [(base.seed, base.num_seeds)]
    points, names = [], {}
    for combo in itertools.product(*[values for _, values in axes]):
        for first, count in seed_runs:
            values = {name: value for (name, _), value in zip(axes, combo)}
            overrides: dict[str, Any] = {}
            for name, value in values.items():
                overrides.update(value if isinstance(value, dict) else {name: value})
            if seed_values is not None:
                overrides.update(seed=first, num_seeds=count)
                values.update(seed=first, num_seeds=count)
            parts = [f"{name}-{value_label(value)}" for name, value in values.items() if name not in ("seed", "num_seeds")]
            parts.append(f"s{first}" if count == 1 else f"s{first}-{first + count - 1}")
            name = _UNSAFE.sub("_", "_".join(parts))
            if name in names:
                raise ConfigError(
                    f"sweep points {names[name]} and {values} would share the run directory {name!r}; make their values differ"
                )
            names[name] = values
            config = dataclasses.replace(base, **overrides, run_dir=str(Path(sweep_dir) / "runs" / name), progress=False)
            if config.wandb:  # W&B: the sweep's points in one group, each under its point's name
                config = dataclasses.replace(
                    config, wandb_group=config.wandb_group or Path(sweep_dir).name, wandb_name=config.wandb_name or name
                )
            points.append(Point(name=name, values=values, overrides=overrides, config=config))
    return points


def default_sweep_dir(spec: SweepSpec) -> Path:
    """sweeps/<env>-<axes>-<fingerprint>: the same command lands in the same folder (and resumes there)."""
    env = spec.base_config().env
    axes = "-".join(name for name, _ in spec.axes) or "single"
    return Path("sweeps") / _UNSAFE.sub("_", f"{env}-{axes}-{spec.fingerprint()}")
