"""Time from launch to the end of the first epoch, for a first run and a repeated one sharing JAX's
persistent compilation cache (what `deepcrl sweep` gives its points; deepcrl/compile_cache.py).

Runs `deepcrl train` three times in fresh processes, each in a new run directory: once with an empty
cache folder (it compiles and fills the cache), twice more with that folder (they read it). Each run
evaluates after its first epoch (`--num-evals` = the number of epochs), so the first row of its
metrics.csv marks the end of the first epoch; the script polls for it. Reported per run: launch to
that row (process start, imports, task and agent build, tracing, compiling or reading the cache, the
prefill and the first epoch), the whole run, and whether its metrics equal the first run's.

    python benchmarks/compile_cache.py           # the default deepcrl train settings, 5 epochs
    python benchmarks/compile_cache.py --quick   # a tiny config (a smoke test)
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, make_parser, output_path, print_table, write_results  # noqa: E402

NAME = "compile_cache"
DEFAULT = ["--total-env-steps", str(256 * 25 * 5), "--num-evals", "5"]  # Config() defaults otherwise: 5 epochs
QUICK = ["--env", "point_open", "--num-envs", "16", "--batch-size", "64", "--width", "32", "--depth", "4", "--updates-per-epoch", "5"]
QUICK += [
    "--prefill-steps",
    "50",
    "--buffer-size",
    "200",
    "--num-eval-envs",
    "16",
    "--total-env-steps",
    str(16 * 25 * 3),
    "--num-evals",
    "3",
]


def rows_of(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(f)]


def timed_run(flags: list[str], run_dir: Path, cache: Path) -> dict:
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepcrl.cli", "train", *flags, "--run-dir", str(run_dir), "--no-progress", "--checkpoint-every", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = None
    while proc.poll() is None:
        if first is None and (run_dir / "metrics.csv").exists():
            first = time.perf_counter() - start
        time.sleep(0.05)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"deepcrl train failed: {proc.stderr.read()}")
    return {"launch_to_first_epoch_s": round(first if first is not None else total, 2), "total_s": round(total, 2)}


def main() -> None:
    parser = make_parser(NAME, __doc__.splitlines()[0])
    args = parser.parse_args()
    header(NAME, args.quick)
    started = time.time()
    flags = QUICK if args.quick else DEFAULT
    rows = []
    with tempfile.TemporaryDirectory(prefix="deepcrl-cache-bench-") as tmp:
        cache, runs = Path(tmp) / "cache", Path(tmp) / "runs"
        for i, label in enumerate(["first (empty cache)", "repeated (cache)", "repeated again (cache)"]):
            result = timed_run(flags, runs / f"run{i}", cache)
            same = rows_of(runs / f"run{i}") == rows_of(runs / "run0")
            entries = len(list(cache.iterdir())) if cache.exists() else 0
            rows.append({"run": label, **result, "same_metrics_as_first": same, "cache_entries": entries})
            print(f"{label}: {result}", flush=True)
    print_table(
        "deepcrl train: launch to the end of the first epoch",
        ["run", "launch to first epoch (s)", "whole run (s)", "same metrics", "cache entries"],
        [[r["run"], r["launch_to_first_epoch_s"], r["total_s"], r["same_metrics_as_first"], r["cache_entries"]] for r in rows],
    )
    write_results(output_path(NAME, args), NAME, {"quick": args.quick, "flags": flags}, rows, started)


if __name__ == "__main__":
    main()
