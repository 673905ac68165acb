"""The MuJoCo tasks on a GPU (one prepared run, under 10 minutes): a short depth-4 vs depth-16 training
run with the paper's settings, then environment steps per second at 512-4096 environments.

1. Training: `deepcrl train --preset paper --env TASK` (512 environments, 62-step collections, 800 SGD
   steps of batch 512 per collection, width 256) at depth 4 and at depth 16, **side by side on the one
   GPU** (two processes, each allowed 45% of its memory), each stopped with SIGTERM after
   --train-seconds (the trainer then saves and exits cleanly). Evaluations every 5 epochs
   (158,720 env steps) so that a short run still records a time-at-goal curve. Sharing the GPU
   slows both runs; the curves are compared per environment step, not per second.
2. Throughput: benchmarks/env_throughput.py on the device for the tasks in --envs at each of
   --num-envs, limited to --throughput-seconds.

Everything lands in --out (default $OUT, else benchmarks/results/gpu_tasks): each run's metrics.csv
and log, env_throughput JSON, and gpu_tasks.json with the summary (device name, curves, steps done).

    python benchmarks/gpu_tasks.py                            # on the GPU machine
    python benchmarks/gpu_tasks.py --quick --out /tmp/gt      # CPU smoke test of this script (smoke preset, tiny budgets)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EPOCH_STEPS = 512 * 62


def start_run(name: str, task: str, depth: int, run_dir: Path, out: Path, quick: bool) -> tuple[subprocess.Popen, Path]:
    if quick:
        flags = ["--preset", "smoke", "--total-env-steps", str(16 * 50 * 200), "--num-evals", "100"]
    else:
        epochs = 400  # more than fit: the run is stopped by time; evaluations every 5 epochs
        flags = ["--preset", "paper", "--total-env-steps", str(EPOCH_STEPS * epochs), "--num-evals", str(epochs // 5)]
    cmd = [
        sys.executable,
        "-m",
        "deepcrl.cli",
        "train",
        *flags,
        "--env",
        task,
        "--depth",
        str(depth),
        "--no-progress",
        "--no-tensorboard",
        "--no-save-buffer",
        "--checkpoint-every",
        "0",
        "--run-dir",
        str(run_dir),
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1", XLA_PYTHON_CLIENT_MEM_FRACTION="0.45")
    log = out / f"train_{name}.log"
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    print(f"started {name}: {' '.join(cmd[3:])}", flush=True)
    return proc, log


def read_curve(metrics: Path) -> list[dict[str, float]]:
    if not metrics.is_file():
        return []
    with metrics.open() as f:
        rows = list(csv.DictReader(f))
    keep = ("epoch", "env_steps", "time_s", "eval/time_at_goal", "eval/success", "eval/final_distance", "critic/accuracy")
    return [{k: float(r[k]) for k in keep if r.get(k) not in (None, "")} for r in rows]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="ant_u4_maze")
    p.add_argument("--depths", type=int, nargs="+", default=[4, 16])
    p.add_argument("--train-seconds", type=float, default=330.0, help="wall clock each training run gets before SIGTERM")
    p.add_argument("--throughput-seconds", type=float, default=130.0)
    p.add_argument(
        "--envs",
        nargs="+",
        default=[
            "ant",
            "ant_u4_maze",
            "ant_big_maze",
            "humanoid",
            "humanoid_u_maze",
            "arm_push_easy",
            "arm_binpick_hard",
            "reacher",
            "pusher",
        ],
    )
    p.add_argument("--num-envs", type=int, nargs="+", default=[512, 4096])
    p.add_argument("--no-train", action="store_true", help="skip the training runs (stage 1)")
    p.add_argument("--render", action="store_true", help="also check `deepcrl render` (GIF, MUJOCO_GL=egl) on a 1-epoch smoke run")
    p.add_argument("--quick", action="store_true", help="CPU smoke test of this script")
    p.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "benchmarks" / "results" / "gpu_tasks"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    summary: dict = {"task": args.task, "depths": args.depths, "quick": args.quick, "command": " ".join(sys.argv)}
    try:
        import jax

        summary["device"] = f"{jax.devices()[0].device_kind} x{jax.device_count()}"
        summary["jax"] = jax.__version__
        import mujoco

        summary["mujoco"] = mujoco.__version__
    except Exception as e:  # noqa: BLE001 - recorded, the runs below will show the details
        summary["device"] = f"unknown ({e})"
    print(f"device: {summary['device']}", flush=True)

    # 1. training runs, side by side
    runs_root = Path("/tmp/deepcrl_gpu_runs")
    shutil.rmtree(runs_root, ignore_errors=True)
    procs = {}
    for depth in [] if args.no_train else args.depths:
        name = f"{args.task}_d{depth}"
        procs[name] = (*start_run(name, args.task, depth, runs_root / name, out, args.quick), runs_root / name)
    deadline = time.time() + args.train_seconds
    while time.time() < deadline and any(proc.poll() is None for proc, _, _ in procs.values()):
        time.sleep(2)
    for name, (proc, _, _) in procs.items():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, (proc, log, run_dir) in procs.items():
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        metrics = run_dir / "metrics.csv"
        if metrics.is_file():
            shutil.copy(metrics, out / f"metrics_{name}.csv")
        curve = read_curve(metrics)
        summary[name] = {"returncode": proc.returncode, "evaluations": curve, "env_steps": curve[-1]["env_steps"] if curve else 0}
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print(f"\n== {name}: return code {proc.returncode}, {len(curve)} evaluations", flush=True)
        for row in curve:
            print(
                f"  epoch {row['epoch']:5.0f}  steps {row['env_steps'] / 1e6:6.2f}M  t {row['time_s']:6.0f}s  "
                f"time at goal {row.get('eval/time_at_goal', float('nan')):7.1f}  success {row.get('eval/success', float('nan')):.2f}  "
                f"critic acc {row.get('critic/accuracy', float('nan')):.3f}",
                flush=True,
            )
        if proc.returncode not in (0, -signal.SIGTERM, 128 + signal.SIGTERM) or not curve:
            print("\n".join(tail), flush=True)

    # 2. throughput
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "env_throughput.py"),
        "--envs",
        *args.envs,
        "--num-envs",
        *map(str, args.num_envs),
        "--steps",
        "20" if args.quick else "100",
        "--repeats",
        "1" if args.quick else "3",
        "--out",
        str(out / "env_throughput_gpu.json"),
    ]
    print(f"\n$ {' '.join(cmd[1:])}", flush=True)
    try:
        r = subprocess.run(cmd, timeout=args.throughput_seconds, cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        summary["throughput_returncode"] = r.returncode
    except subprocess.TimeoutExpired:
        summary["throughput_returncode"] = "timeout (rows printed above are complete measurements)"

    # 3. rendering on the GPU machine (EGL)
    if args.render:
        run_dir = runs_root / "render_smoke"
        env = dict(os.environ, PYTHONUNBUFFERED="1", MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
        train = [
            sys.executable,
            "-m",
            "deepcrl.cli",
            "train",
            "--preset",
            "smoke",
            "--env",
            "ant_u_maze",
            "--total-env-steps",
            "800",
            "--num-evals",
            "1",
            "--no-progress",
            "--no-tensorboard",
            "--run-dir",
            str(run_dir),
        ]
        render = [
            sys.executable,
            "-m",
            "deepcrl.cli",
            "render",
            str(run_dir),
            "--episodes",
            "1",
            "--max-steps",
            "60",
            "--format",
            "gif",
            "--out",
            str(out / "render_ant_u_maze"),
        ]
        t0 = time.time()
        r1 = subprocess.run(train, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        r2 = subprocess.run(render, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300) if r1.returncode == 0 else r1
        gif = out / "render_ant_u_maze.gif"
        summary["render"] = {
            "returncode": r2.returncode,
            "seconds": time.time() - t0,
            "gif_bytes": gif.stat().st_size if gif.exists() else 0,
            "output": (r2.stdout + r2.stderr)[-1500:],
        }
        print(
            f"\nrender: return code {r2.returncode}, gif {summary['render']['gif_bytes']} bytes\n{summary['render']['output']}", flush=True
        )
    summary["seconds"] = time.time() - started
    (out / "gpu_tasks.json").write_text(json.dumps(summary, indent=1))
    print(f"\nwrote {out / 'gpu_tasks.json'} after {summary['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
