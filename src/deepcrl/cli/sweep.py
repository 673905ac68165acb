"""`deepcrl sweep`: parse the sweep's options and its grid, call deepcrl.sweep, print the table."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Sequence

from deepcrl.errors import ConfigError

SWEEP_HELP = """usage: deepcrl sweep [SWEEP OPTIONS] [--file SWEEP.yaml] [--NAME V1,V2,...] [--NAME VALUE] ...
       deepcrl sweep --status SWEEP_DIR
       deepcrl sweep --resume SWEEP_DIR [LAUNCH OPTIONS]

Run a grid of deepcrl train runs, one run directory per point. Every flag of deepcrl train is
accepted: a comma-separated list makes it an axis of the grid (--depth 4,16,64 --agent crl,sac+her),
one value sets it for every point (--env ant_big_maze). --seed 0,1,2 runs the seeds of each point
in one program (--num-seeds 3) unless --no-batch-seeds. The same command again skips the finished
points, resumes interrupted ones from their checkpoints and starts the rest.

sweep options:
  --file FILE               a sweep file (YAML or JSON: grid:, settings:, preset:, batch_seeds:); flags override it
  --out DIR                 the sweep's folder (default: sweeps/<env>-<axes>-<hash of the grid and settings>)
  --preset NAME             settings start from a preset (paper, smoke), as deepcrl train --preset
  --batch-seeds / --no-batch-seeds   a point's seeds in one program (default) or one run each
  --dry-run                 list the points and their run directories; run and write nothing
  --status DIR              print the status of every point of the sweep in DIR (and its scores) and exit
  --resume DIR              run the sweep stored in DIR again (its grid and settings; launch options may change)
  --json                    --status / --dry-run: print JSON instead of a table

launch options:
  --launcher local|slurm    processes on this machine (default), or one Slurm job per point (submitit)
  --jobs N                  points run at once (local: default 1; slurm: the job array's limit, default none)
  --cache-dir DIR           JAX's compilation cache shared by the points (default: ~/.cache/deepcrl/jax)
  --no-compile-cache        compile every point afresh

slurm options (--launcher slurm; docs/experiments.md):
  --partition NAME          the partition (default: the cluster's default)
  --time MINUTES            each job's time limit (default 240); a longer run is requeued and resumes
  --gpus-per-job N          GPUs per job (default 0)
  --cpus-per-job N          CPUs per job (default: the cluster's)
  --mem-gb N                memory per job in GB (default: the cluster's)
  --slurm-option KEY=VALUE  any other sbatch option, repeatable (account=proj, qos=high, constraint=a100)
  --slurm-setup LINE        a shell line the job runs first, repeatable ("module load cuda")
  --slurm-dir DIR           submitit's job files and logs (default: SWEEP_DIR/slurm)
  --max-attempts N          submissions per point: a killed job is submitted again (default 3)
  --max-requeues N          requeues per job at its time limit (default 20; preemptions always requeue)
  --signal-delay SECONDS    SIGUSR2 this long before the time limit: the run checkpoints and requeues (default 90)
  --no-wait                 submit and return; --status DIR shows the jobs, the same command watches them again
"""

# option -> (LaunchOptions field, type); the sweep's own options are handled apart
_LAUNCH = {"--launcher": ("launcher", str), "--jobs": ("jobs", int), "--cache-dir": ("cache_dir", str)}
_LAUNCH |= {"--partition": ("partition", str), "--time": ("time_min", int), "--gpus-per-job": ("gpus_per_job", int)}
_LAUNCH |= {"--cpus-per-job": ("cpus_per_job", int), "--mem-gb": ("mem_gb", int), "--max-attempts": ("max_attempts", int)}
_LAUNCH |= {"--max-requeues": ("max_requeues", int), "--signal-delay": ("signal_delay_s", int), "--slurm-dir": ("slurm_dir", str)}
_REPEATED = {"--slurm-option": "slurm_options", "--slurm-setup": "slurm_setup"}  # launch options given once per value
_VALUED = {"--file", "--out", "--preset", "--status", "--resume", *_LAUNCH, *_REPEATED}
_SWITCHES = {"--batch-seeds", "--no-batch-seeds", "--dry-run", "--json", "--no-compile-cache", "--no-wait"}


def _number(flag: str, text: str, kind: type):
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r} is not allowed; it must be {'an integer' if kind is int else 'a number'}") from None


def parse_sweep_argv(argv: Sequence[str]):
    """(sweep options {flag: value}, LaunchOptions, the deepcrl train flags left over)."""
    from deepcrl.sweep import LaunchOptions

    options: dict[str, object] = {}
    launch: dict[str, object] = {}
    rest: list[str] = []
    args, i = list(argv), 0
    while i < len(args):
        arg = args[i]
        flag, eq, inline = arg.partition("=")
        if flag in _SWITCHES and not eq:
            options[flag] = True
        elif flag in _VALUED:
            if eq:
                value = inline
            elif i + 1 < len(args) and (not args[i + 1].startswith("--") or flag == "--slurm-setup"):
                i += 1
                value = args[i]
            else:
                raise ConfigError(f"{flag} needs a value ({flag} VALUE)")
            if flag in _REPEATED:
                launch[_REPEATED[flag]] = (*launch.get(_REPEATED[flag], ()), value)
            elif flag in _LAUNCH:
                name, kind = _LAUNCH[flag]
                launch[name] = _number(flag, value, kind) if kind is not str else value
            else:
                if flag in options:
                    raise ConfigError(f"{flag} is given twice; give it once")
                options[flag] = value
        else:
            rest.append(arg)
        i += 1
    if "--no-compile-cache" in options:
        launch["compile_cache"] = False
    if "--no-wait" in options:
        launch["wait"] = False
    return options, LaunchOptions(**launch), rest


def _table(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("point", "status", "attempts", "success", "time_at_goal", "run_dir"):
        table.add_column(column.replace("_", " "), justify="right" if column in ("attempts", "success", "time_at_goal") else "left")
    for r in rows:
        table.add_row(
            r["point"],
            r["status"],
            str(r["attempts"]),
            "" if r["success"] is None else f"{r['success']:.3f}",
            "" if r["time_at_goal"] is None else f"{r['time_at_goal']:.1f}",
            r["run_dir"],
        )
    Console(width=200).print(table)


def sweep_command(argv: Sequence[str]) -> int:
    from deepcrl.sweep import expand, load_sweep_file, read_sweep, run_sweep, spec_from_flags, status_rows
    from deepcrl.sweep.grid import default_sweep_dir

    if any(a in ("-h", "--help") for a in argv):
        print(SWEEP_HELP)
        return 0
    options, launch, rest = parse_sweep_argv(argv)
    as_json = bool(options.get("--json"))
    if "--status" in options:
        if rest or len(options) > 1 + as_json:
            raise ConfigError("--status DIR takes no other settings; it only reads the sweep in DIR")
        index = read_sweep(str(options["--status"]))
        rows = status_rows(list(index.entries.values()))
        if as_json:
            print(json.dumps({"sweep_dir": str(index.dir), "counts": index.counts(), "points": rows}, indent=2))
        else:
            counts = ", ".join(f"{v} {k}" for k, v in index.counts().items())
            _table(rows, f"sweep {index.dir}: {len(rows)} points ({counts})")
        return 0
    if "--resume" in options:
        allowed = {"--resume", "--no-compile-cache", "--no-wait"}  # launch switches may change
        if rest or set(options) - allowed:
            given = (rest or sorted(set(options) - allowed))[0]
            raise ConfigError(f"--resume DIR runs the stored sweep as it is; {given} cannot change it (only launch options may be given)")
        spec = read_sweep(str(options["--resume"])).spec
        sweep_dir = str(options["--resume"])
    else:
        base = load_sweep_file(str(options["--file"])) if "--file" in options else None
        spec = spec_from_flags(rest, base)
        if "--preset" in options:
            from deepcrl.config_files import preset_config

            preset_config(str(options["--preset"]))  # an unknown name fails here
            spec = replace(spec, preset=str(options["--preset"]))
        if "--batch-seeds" in options or "--no-batch-seeds" in options:
            if "--batch-seeds" in options and "--no-batch-seeds" in options:
                raise ConfigError("--batch-seeds and --no-batch-seeds contradict each other; give one")
            spec = replace(spec, batch_seeds="--batch-seeds" in options)
        sweep_dir = str(options.get("--out") or default_sweep_dir(spec))
    if options.get("--dry-run"):
        from deepcrl.sweep.run import check_options, check_points

        check_options(launch, cluster=False)  # a Slurm sweep can be checked where it cannot be submitted
        points = expand(spec, sweep_dir)
        check_points(points)
        if as_json:
            print(json.dumps({"sweep_dir": sweep_dir, "points": [{"name": p.name, "settings": p.overrides} for p in points]}, indent=2))
        else:
            print(f"sweep {sweep_dir}: {len(points)} point{'s' if len(points) != 1 else ''} (nothing run or written)")
            for p in points:
                print(f"  {p.name}: " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in p.overrides.items()))
        return 0
    result = run_sweep(spec, launch, sweep_dir)
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items())
    _table(status_rows(result.entries), f"sweep {result.sweep_dir}: {len(result.entries)} points ({counts})")
    if result.stopped_by:
        return 130
    return 0 if result.counts.get("done", 0) == len(result.entries) else 1
