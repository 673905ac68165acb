"""Running a sweep: validate every point, write the index, launch what is not finished, report.

    result = run_sweep(spec, LaunchOptions(jobs=2), sweep_dir=None)   # sweeps/<env>-<axes>-<hash> by default

The same call again (the same command) skips finished points, resumes interrupted ones from their
checkpoints and starts the rest: an interrupted sweep rerun ends as an uninterrupted one would, since
each point's resume is exact. Nothing is written before every point's settings have been checked.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepcrl.compile_cache import cache_dir as default_cache_dir
from deepcrl.compile_cache import cache_environment
from deepcrl.errors import ConfigError
from deepcrl.sweep.grid import Point, SweepSpec, default_sweep_dir, expand
from deepcrl.sweep.index import Entry, SweepIndex, pid_alive

LAUNCHERS = ("local", "slurm")
LAUNCH_FLAG_NAMES = ("launcher", "jobs", "cache_dir")  # the launch options whose messages read name=value


@dataclass(frozen=True)
class LaunchOptions:
    launcher: str = "local"  # local: processes on this machine; slurm: one Slurm job per point (deepcrl.sweep.slurm)
    jobs: int | None = None  # points run at once (local: default 1; slurm: the job array's limit, default none)
    compile_cache: bool = True  # share compiled programs between points (JAX's persistent cache)
    cache_dir: str | None = None  # the cache's folder; None: deepcrl.compile_cache.cache_dir()
    # slurm only
    partition: str | None = None  # the partition to submit to (None: the cluster's default)
    time_min: int = 240  # each job's time limit in minutes; a run longer than it is requeued and resumes
    gpus_per_job: int = 0  # GPUs per job (on one node)
    cpus_per_job: int | None = None  # CPUs per job (None: the cluster's default)
    mem_gb: int | None = None  # memory per job in GB (None: the cluster's default)
    max_attempts: int = 3  # submissions per point: a killed job (scancel, node failure) is submitted again this often
    max_requeues: int = 20  # requeues per job at its time limit (preemptions do not count)
    signal_delay_s: int = 90  # SIGUSR2 this many seconds before the time limit: the run stops with a checkpoint
    wait: bool = True  # watch the jobs to their end (and resubmit killed ones); False: submit and return
    slurm_dir: str | None = None  # submitit's files (job scripts, logs, results); None: SWEEP_DIR/slurm
    slurm_options: tuple[str, ...] = ()  # more sbatch options, KEY=VALUE (account=..., qos=..., constraint=...)
    slurm_setup: tuple[str, ...] = ()  # shell lines the job script runs first (module load ..., source venv/bin/activate)


SLURM_ONLY = (
    "partition",
    "time_min",
    "gpus_per_job",
    "cpus_per_job",
    "mem_gb",
    "max_attempts",
    "max_requeues",
    "signal_delay_s",
    "wait",
    "slurm_dir",
    "slurm_options",
    "slurm_setup",
)
# LaunchOptions field -> its deepcrl sweep flag (for messages)
LAUNCH_FLAGS_BY_FIELD = {f: "--" + f.replace("_", "-") for f in LaunchOptions.__dataclass_fields__}
LAUNCH_FLAGS_BY_FIELD |= {"time_min": "--time", "wait": "--no-wait", "slurm_options": "--slurm-option", "slurm_setup": "--slurm-setup"}


@dataclass
class SweepResult:
    sweep_dir: Path
    entries: list[Entry]
    counts: dict[str, int]
    stopped_by: str | None = None  # the signal that stopped the sweep early


def check_options(options: LaunchOptions, cluster: bool = True) -> None:
    """ConfigError for a bad launch option; `cluster`: also that the launcher's cluster answers here (not for --dry-run)."""
    if options.launcher not in LAUNCHERS:
        raise ConfigError(f"launcher={options.launcher!r} is not allowed; choose one of: {', '.join(LAUNCHERS)}")
    if options.jobs is not None and (isinstance(options.jobs, bool) or not isinstance(options.jobs, int) or options.jobs < 1):
        raise ConfigError(f"jobs={options.jobs!r} is not allowed; it must be a positive integer (points run side by side)")
    positive = {"time_min": options.time_min, "max_attempts": options.max_attempts, "signal_delay_s": options.signal_delay_s}
    positive |= {"cpus_per_job": options.cpus_per_job, "mem_gb": options.mem_gb}
    for name, value in {**positive, "gpus_per_job": options.gpus_per_job, "max_requeues": options.max_requeues}.items():
        low = 1 if name in positive else 0
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            flag = LAUNCH_FLAGS_BY_FIELD.get(name, name)
            raise ConfigError(f"{flag} {value!r} is not allowed; it must be an integer >= {low}")
    for item in options.slurm_options:
        key, eq, _ = item.partition("=")
        if not eq or not key or not key.replace("_", "-").replace("-", "").isalnum():
            raise ConfigError(
                f"--slurm-option {item!r} is not allowed; give KEY=VALUE, an sbatch option without its dashes (account=myproj)"
            )
    if options.launcher != "slurm":
        slurm_given = [f for f in SLURM_ONLY if getattr(options, f) != LaunchOptions.__dataclass_fields__[f].default]
        if slurm_given:
            flag = LAUNCH_FLAGS_BY_FIELD.get(slurm_given[0], slurm_given[0])
            raise ConfigError(f"{flag} is an option of --launcher slurm; this sweep runs with --launcher {options.launcher}")
    elif cluster:
        from deepcrl.sweep.slurm import check_slurm

        check_slurm()


def check_points(points: list[Point]) -> None:
    """Every point's settings checked as deepcrl train checks them (build.prepare), before anything is written."""
    from deepcrl.build import prepare

    for point in points:
        try:
            prepare(point.config)
        except ConfigError as e:
            raise ConfigError(f"sweep point {point.name}: {e}") from None


class _Lock:
    """One process runs a sweep directory at a time (an advisory lock the kernel drops when it dies)."""

    def __init__(self, sweep_dir: Path):
        self.path = sweep_dir / ".lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self.path.open("a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            owner = self.file.read().strip() or "another process"
            self.file.close()
            raise ConfigError(f"sweep {str(self.path.parent)!r} is being run by {owner}; wait for it, or stop it first") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"deepcrl sweep (pid {os.getpid()})")
        self.file.flush()
        return self

    def __exit__(self, *exc):
        self.file.close()
        return False


def _say(text: str) -> None:
    print(text, flush=True)


def _describe(entry: Entry) -> str:
    score = entry.score
    parts = [f"{k.removeprefix('eval/')} {v:.3f}" for k, v in score.items() if k in ("eval/success", "eval/time_at_goal")]
    return ", ".join(parts)


def run_sweep(spec: SweepSpec, options: LaunchOptions = LaunchOptions(), sweep_dir: str | Path | None = None) -> SweepResult:
    """Run every point of `spec` that has not finished; returns the points' final statuses."""
    check_options(options)
    sweep_dir = Path(sweep_dir) if sweep_dir is not None else default_sweep_dir(spec)
    points = expand(spec, sweep_dir)
    check_points(points)
    index = SweepIndex(sweep_dir, spec, points)
    index.check_same_sweep()
    with _Lock(sweep_dir):
        index.refresh()
        for entry in index.entries.values():
            if entry.status == "running" and entry.job and str(entry.job).isdigit() and pid_alive(int(entry.job), entry.run_dir):
                raise ConfigError(
                    f"sweep point {entry.name} still runs as process {entry.job} (of an earlier deepcrl sweep); wait for it or kill it"
                )
            if entry.status in ("running", "queued") and options.launcher != "slurm":
                raise ConfigError(
                    f"sweep point {entry.name} is {entry.status} as {entry.job}; wait for it, scancel it, or rerun with --launcher slurm"
                )
        index.write_configs()
        index.save()
        todo = [name for name, e in index.entries.items() if e.status != "done"]
        counts = index.counts()
        _say(
            f"sweep {sweep_dir}: {len(points)} point{'s' if len(points) != 1 else ''} "
            f"({', '.join(f'{v} {k}' for k, v in counts.items())}); running {len(todo)} with the {options.launcher} launcher"
        )
        env: dict[str, str] = {}
        if options.compile_cache:
            env = cache_environment(options.cache_dir or default_cache_dir())
        done_before = len(points) - len(todo)
        finished = [done_before]
        started_at: dict[str, float] = {}

        def report(event: str, entry: Entry) -> None:
            if event in ("submit", "adopt"):
                started_at.setdefault(entry.name, time.time())
                verb = "submitted" if event == "submit" else "watching"
                _say(f"  {verb} {entry.name} as {entry.job.removeprefix('slurm:')} (attempt {entry.attempts}, {entry.status})")
                return
            if event == "requeued":
                _say(
                    f"  {entry.name}: job {entry.job.removeprefix('slurm:')} was requeued (preempted or at its time limit); it resumes from its checkpoint"
                )
                return
            if event == "killed":
                _say(f"  {entry.name}: its job ended before the run did (killed?); submitting it again (attempt {entry.attempts + 1})")
                return
            if event == "start" and entry.job and entry.job.startswith("slurm:"):
                _say(f"  running {entry.name} (job {entry.job.removeprefix('slurm:')})")
                return
            if event == "start":
                started_at[entry.name] = time.time()
                verb = "resuming" if entry.status == "running" and Path(entry.run_dir, "state").exists() else "starting"
                _say(f"  {verb} {entry.name} (attempt {entry.attempts}, job {entry.job})")
                return
            took = time.time() - started_at.get(entry.name, time.time())
            if entry.status == "done":
                finished[0] += 1
                _say(f"  [{finished[0]}/{len(points)}] done {entry.name} in {took:.0f} s: {_describe(entry)}")
            else:
                _say(f"  {entry.status} {entry.name} after {took:.0f} s (exit code {entry.returncode}; log {index.log_path(entry.name)})")

        stopped = None
        if todo and options.launcher == "slurm":
            from deepcrl.sweep.slurm import run_slurm

            stopped = run_slurm(index, todo, options, env, report)
        elif todo:
            from deepcrl.sweep.local import run_local

            stopped = run_local(index, todo, options.jobs or 1, env, report)
        index.refresh()
        index.save()
    counts = index.counts()
    if stopped and options.launcher == "slurm":
        print(
            f"{stopped}: stopped watching; the jobs go on on the cluster (deepcrl sweep --status {sweep_dir}; "
            "the same command again watches them)",
            file=sys.stderr,
        )
    elif stopped:
        print(f"{stopped}: the sweep stopped early; run the same command again to finish it", file=sys.stderr)
    elif options.launcher == "slurm" and not options.wait and todo:
        print(f"submitted; deepcrl sweep --status {sweep_dir} shows the jobs, the same command again watches them", file=sys.stderr)
    return SweepResult(sweep_dir=sweep_dir, entries=list(index.entries.values()), counts=counts, stopped_by=stopped)


def status_rows(entries: list[Entry]) -> list[dict[str, Any]]:
    """One row per point for a status table: name, status, attempts, success, time at goal, run directory."""
    rows = []
    for e in entries:
        rows.append(
            {
                "point": e.name,
                "status": e.status,
                "attempts": e.attempts,
                "success": e.score.get("eval/success"),
                "time_at_goal": e.score.get("eval/time_at_goal"),
                "run_dir": e.run_dir,
            }
        )
    return rows
