"""Training throughput at the paper's settings on one GPU: env steps per second, compile time and peak
memory per configuration (one prepared run for the `device` tool, under 8 minutes).

Each configuration is a whole training epoch of `deepcrl train --preset paper` (512 environments x 62
steps collected, 800 SGD steps of batch 512, width 256; `Trainer.epoch`, the program a run loops over),
in its own subprocess so that the device's peak memory is its alone:

    child: Trainer(config); compile init (timed), run it (the prefill, timed), compile the epoch
           (timed); one warm-up epoch; then timed epochs until --time-per-config seconds or 3 epochs;
           peak = jax.devices()[0].memory_stats()["peak_bytes_in_use"] where the backend has it
           (GPU), else XLA's memory analysis of the compiled epoch (arguments + temp); beside it the
           `--dry-run` estimate (deepcrl.dry_run.plan_run(config).memory.total_bytes).

env steps/s is summed over the seeds of a program (`--num-seeds 5` trains 5 seeds side by side);
compile time is reported apart from the steady state. The configurations run in order of what the
targets need (docs/benchmarks.md, "GPU throughput"): ant_big_maze at depth 4 and 64 with 1 and 5 seeds,
the 1024-layer critic with a 512-layer actor on humanoid (its epoch shortened to 8 SGD steps after a
2-step collection: memory and time per update, not throughput), humanoid at depth 4 and 64, bfloat16
matmuls, then depth 16 and the rest. The parent starts no configuration after --budget seconds
(default 420) and records the rest as skipped; a child past --config-timeout is killed.

`--profile` also writes a `jax.profiler` trace of two epochs of the first configuration to
OUT/trace (read it with TensorBoard's profile plugin or Perfetto).

    python benchmarks/gpu_throughput.py               # on the GPU: JSON to $OUT/gpu_throughput.json
    python benchmarks/gpu_throughput.py --quick       # CPU smoke test: point mazes, tiny sizes (about a minute)
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

NAME = "gpu_throughput"

# (name, overrides on top of the preset); in the order they run
PAPER_CONFIGS = [
    ("ant_big_maze d4 s1 f32", dict(env="ant_big_maze", depth=4, num_seeds=1)),
    ("ant_big_maze d4 s5 f32", dict(env="ant_big_maze", depth=4, num_seeds=5)),
    ("ant_big_maze d64 s1 f32", dict(env="ant_big_maze", depth=64, num_seeds=1)),
    ("ant_big_maze d64 s5 f32", dict(env="ant_big_maze", depth=64, num_seeds=5)),
    (
        "humanoid c1024 a512 s1 f32",
        dict(env="humanoid", critic_depth=1024, actor_depth=512, num_seeds=1, updates_per_epoch=8, unroll_length=2),
    ),
    ("humanoid d4 s1 f32", dict(env="humanoid", depth=4, num_seeds=1)),
    ("humanoid d64 s1 f32", dict(env="humanoid", depth=64, num_seeds=1)),
    ("ant_big_maze d4 s5 bf16", dict(env="ant_big_maze", depth=4, num_seeds=5, matmul_dtype="bfloat16")),
    ("ant_big_maze d64 s5 bf16", dict(env="ant_big_maze", depth=64, num_seeds=5, matmul_dtype="bfloat16")),
    ("ant_big_maze d16 s1 f32", dict(env="ant_big_maze", depth=16, num_seeds=1)),
    ("ant_big_maze d16 s5 f32", dict(env="ant_big_maze", depth=16, num_seeds=5)),
    ("humanoid d4 s5 f32", dict(env="humanoid", depth=4, num_seeds=5)),
    ("humanoid d64 s5 f32", dict(env="humanoid", depth=64, num_seeds=5)),
    ("humanoid d16 s1 f32", dict(env="humanoid", depth=16, num_seeds=1)),
    ("humanoid d16 s5 f32", dict(env="humanoid", depth=16, num_seeds=5)),
    ("ant_big_maze d4 s1 bf16", dict(env="ant_big_maze", depth=4, num_seeds=1, matmul_dtype="bfloat16")),
    ("ant_big_maze d64 s1 bf16", dict(env="ant_big_maze", depth=64, num_seeds=1, matmul_dtype="bfloat16")),
    ("humanoid d64 s5 bf16", dict(env="humanoid", depth=64, num_seeds=5, matmul_dtype="bfloat16")),
]
# --quick: the same pipeline on point mazes with tiny sizes (the CPU check of this script)
TINY = dict(num_envs=16, unroll_length=10, updates_per_epoch=8, batch_size=32, buffer_size=200, prefill_steps=20, width=32)
QUICK_CONFIGS = [
    ("point_big_maze c8 a4 s1 f32", dict(TINY, env="point_big_maze", critic_depth=8, actor_depth=4, num_seeds=1)),
    ("point_open d4 s2 bf16", dict(TINY, env="point_open", depth=4, num_seeds=2, matmul_dtype="bfloat16")),
]


# ----------------------------------------------------------------------------------------------
# one configuration (runs in a child process)
# ----------------------------------------------------------------------------------------------


def child_config(spec: dict):
    from deepcrl.config import Config
    from deepcrl.presets import PRESETS

    preset = {} if spec["quick"] else PRESETS["paper"]
    return dataclasses.replace(Config(progress=False, tensorboard=False), **{**preset, **spec["overrides"]})


def run_one(spec: dict) -> dict:
    import jax

    from _common import EpochProgram
    from deepcrl.dry_run import plan_run

    t_start = time.perf_counter()
    config = child_config(spec)
    plan = plan_run(config)
    program = EpochProgram(config)
    program.run(1)  # warm-up
    deadline = time.perf_counter() + spec["time_per_config"]
    while len(program.times) < 3 and (not program.times or time.perf_counter() < deadline):
        program.sample(1)
    seconds_per_epoch = sorted(program.times)[len(program.times) // 2]
    if spec.get("profile_dir"):
        with jax.profiler.trace(spec["profile_dir"]):
            program.run(2)

    device = jax.devices()[0]
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - a backend without memory statistics
        stats = None
    analysis = program.epoch.memory_analysis()
    xla_peak = int(analysis.argument_size_in_bytes + analysis.temp_size_in_bytes) if analysis is not None else None
    if stats and "peak_bytes_in_use" in stats:
        peak, source = int(stats["peak_bytes_in_use"]), "memory_stats.peak_bytes_in_use"
    else:
        peak, source = xla_peak, "xla.memory_analysis (arguments + temp)"
    estimate = plan.memory.total_bytes if plan.memory is not None else None
    n = config.num_seeds
    return {
        **spec,
        "status": "ok",
        "device": f"{device.platform}:{device.device_kind}",
        "env": config.env,
        "critic_depth": config.resolved_critic_depth,
        "actor_depth": config.resolved_actor_depth,
        "num_seeds": n,
        "matmul_dtype": config.matmul_dtype,
        "num_envs": config.num_envs,
        "env_steps_per_epoch": config.env_steps_per_epoch,
        "updates_per_epoch": config.updates_per_epoch,
        "batch_size": config.batch_size,
        "init_compile_s": program.init_compile_s,
        "prefill_s": program.init_run_s,
        "epoch_compile_s": program.epoch_compile_s,
        "seconds_per_epoch": seconds_per_epoch,
        "epoch_times_s": [round(t, 4) for t in program.times],
        "env_steps_per_s": n * config.env_steps_per_epoch / seconds_per_epoch,
        "env_steps_per_s_per_seed": config.env_steps_per_epoch / seconds_per_epoch,
        "updates_per_s_per_seed": config.updates_per_epoch / seconds_per_epoch,
        "ms_per_update_upper_bound": 1000 * seconds_per_epoch / config.updates_per_epoch,  # the epoch's collection included
        "peak_bytes": peak,
        "peak_source": source,
        "xla_peak_bytes": xla_peak,
        "dry_run_estimate_bytes": estimate,
        "peak_to_estimate": peak / estimate if peak and estimate else None,
        "matmul_precision": str(jax.config.jax_default_matmul_precision),
        "child_wall_s": time.perf_counter() - t_start,
    }


# ----------------------------------------------------------------------------------------------
# the parent: one subprocess per configuration, a time budget over all
# ----------------------------------------------------------------------------------------------


def main() -> None:
    if "--child" not in sys.argv:
        # The parent must not hold the accelerator while its children measure.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import _common
    from _common import load_average, make_parser, print_table, write_results

    parser = make_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--child", default=None, help="(internal) run one configuration, given as JSON")
    parser.add_argument("--only", nargs="+", default=None, help="run only the configurations whose names contain one of these strings")
    parser.add_argument(
        "--time-per-config", type=float, default=None, help="seconds of timed epochs per configuration (default 20; --quick: 2)"
    )
    parser.add_argument("--config-timeout", type=float, default=None, help="a child running longer is killed (default 170 s; --quick: 240)")
    parser.add_argument(
        "--budget", type=float, default=None, help="no configuration starts after this many seconds (default 420; --quick: 400)"
    )
    parser.add_argument("--profile", action="store_true", help="write a jax.profiler trace of the first configuration to OUT/trace")
    args = parser.parse_args()

    if args.child is not None:
        print("RESULT " + json.dumps(run_one(json.loads(args.child))), flush=True)
        return

    started = time.time()
    _common._LOAD_AT_START = load_average()
    q = args.quick
    print(
        f"{NAME}: one subprocess per configuration; load {_common._LOAD_AT_START}{'  [--quick: smoke-test sizes]' if q else ''}", flush=True
    )
    out = args.out
    if out is None and os.environ.get("OUT"):
        out = Path(os.environ["OUT"]) / (f"{NAME}.quick.json" if q else f"{NAME}.json")
    if out is None:
        from _common import output_path

        out = output_path(NAME, args)
    configs = QUICK_CONFIGS if q else PAPER_CONFIGS
    if args.only:
        configs = [(name, o) for name, o in configs if any(s in name for s in args.only)]
    time_per_config = args.time_per_config or (2.0 if q else 20.0)
    config_timeout = args.config_timeout or (240.0 if q else 170.0)
    budget = args.budget or (400.0 if q else 420.0)

    rows = []
    t_begin = time.perf_counter()
    for i, (name, overrides) in enumerate(configs):
        spec = {"name": name, "overrides": overrides, "quick": q, "time_per_config": time_per_config}
        if args.profile and i == 0:
            spec["profile_dir"] = str(Path(out).parent / "trace")
        elapsed = time.perf_counter() - t_begin
        if elapsed > budget:
            rows.append({**spec, "status": f"skipped: budget of {budget:g} s used ({elapsed:.0f} s)"})
            print(f"  {name}: skipped (budget)", flush=True)
            continue
        timeout = min(config_timeout, max(30.0, budget + 60.0 - elapsed))
        t = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, timeout=timeout)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode == 0 and lines:
                row = json.loads(lines[-1][len("RESULT ") :])
            else:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                row = {**spec, "status": f"failed (exit {proc.returncode}): {' | '.join(tail)[-400:]}"}
        except subprocess.TimeoutExpired:
            row = {**spec, "status": f"timed out after {timeout:.0f} s"}
        row["wall_s"] = time.perf_counter() - t
        rows.append(row)
        if row["status"] == "ok":
            print(
                f"  {name}: {row['env_steps_per_s']:,.0f} env steps/s ({row['seconds_per_epoch']:.2f} s/epoch), "
                f"compile {row['init_compile_s'] + row['epoch_compile_s']:.1f} s, peak {row['peak_bytes'] / 1e9:.2f} GB "
                f"(dry run {row['dry_run_estimate_bytes'] / 1e9:.2f}), wall {row['wall_s']:.0f} s",
                flush=True,
            )
        else:
            print(f"  {name}: {row['status']}", flush=True)

    ok = [r for r in rows if r.get("status") == "ok"]
    gb = lambda r, k: r[k] / 1e9 if r.get(k) else None  # noqa: E731
    print_table(
        f"training throughput{' (' + ok[0]['device'] + ')' if ok else ''}",
        [
            "configuration",
            "env steps/s",
            "per seed",
            "s/epoch",
            "ms/update <=",
            "compile s",
            "prefill s",
            "peak GB",
            "dry run GB",
            "status",
        ],
        [
            [
                r["name"],
                r.get("env_steps_per_s"),
                r.get("env_steps_per_s_per_seed"),
                r.get("seconds_per_epoch"),
                r.get("ms_per_update_upper_bound"),
                r["init_compile_s"] + r["epoch_compile_s"] if "epoch_compile_s" in r else None,
                r.get("prefill_s"),
                gb(r, "peak_bytes"),
                gb(r, "dry_run_estimate_bytes"),
                r["status"][:40],
            ]
            for r in rows
        ],
    )
    settings = {"quick": q, "time_per_config": time_per_config, "config_timeout": config_timeout, "budget": budget, "profile": args.profile}
    write_results(out, NAME, settings, rows, started)
    if not ok:
        raise SystemExit("no configuration ran")


if __name__ == "__main__":
    main()
