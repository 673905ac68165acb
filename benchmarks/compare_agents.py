"""CRL against the TD and imitation baselines on the same networks: a CPU-sized version of the paper's
comparison (that TD-trained critics do not gain from depth the way CRL's do).

For each agent (CRL, SAC+HER, TD3+HER, GCBC) and each depth, one `deepcrl train` run of N seeds in
one program (`--num-seeds`), every other setting the library's default for that agent (docs/baselines.md):

    deepcrl train --agent A [--her] --depth D --env ENV --num-seeds 3 --total-env-steps S --num-evals E \\
                  --run-dir OUT/A-dD --no-progress

Runs already finished in OUT are read, not re-run, and an interrupted one is resumed, so the script
can be stopped and started again. Prints the table of final scores (mean of the last 5 evaluations,
per seed, mean +- standard error over seeds), writes them with every evaluation's curve to the JSON,
and draws the curves (success and time at goal against env steps) to `--plot`.

    python benchmarks/compare_agents.py                                 # point_u_maze, depth 4 and 16, 3 seeds, 4M steps
    python benchmarks/compare_agents.py --quick                         # a smoke test: seconds per run
    python benchmarks/compare_agents.py --env ant_big_maze --depths 4 64 --total-env-steps 100000000 --train-flags "--preset paper"
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

from _common import header, make_parser, output_path, print_table, write_results

AGENTS = {  # name in the table -> deepcrl train flags
    "CRL": ["--agent", "crl"],
    "SAC+HER": ["--agent", "sac", "--her"],
    "TD3+HER": ["--agent", "td3", "--her"],
    "GCBC": ["--agent", "gcbc"],
}


def main() -> None:
    parser = make_parser("compare_agents", __doc__.splitlines()[0])
    parser.add_argument("--env", default="point_u_maze")
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=list(AGENTS))
    parser.add_argument("--num-seeds", type=int, default=3)
    parser.add_argument("--total-env-steps", type=int, default=4_000_000)
    parser.add_argument("--num-evals", type=int, default=20)  # as deepcrl train, and as the table in docs/baselines.md
    parser.add_argument("--runs", type=Path, default=Path("runs/compare_agents"), help="where the run directories go")
    parser.add_argument(
        "--train-flags",
        default="",
        help='more `deepcrl train` flags for every run, one string (e.g. "--preset paper" for a GPU comparison on a MuJoCo task)',
    )
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the curves (default: next to the JSON)")
    args = parser.parse_args()
    header("compare_agents", args.quick)
    started = time.time()
    extra = shlex.split(args.train_flags)
    if args.quick:
        args.total_env_steps, args.num_evals = 16 * 25 * 4, 2
        extra += [
            "--num-envs",
            "16",
            "--batch-size",
            "64",
            "--updates-per-epoch",
            "4",
            "--prefill-steps",
            "50",
            "--buffer-size",
            "200",
            "--width",
            "32",
            "--num-eval-envs",
            "16",
            "--checkpoint-every",
            "0",
        ]

    rows, curves = [], {}
    for depth in args.depths:
        for name in args.agents:
            run_dir = args.runs / f"{name.lower().replace('+', '-')}-d{depth}"
            flags = (
                AGENTS[name]
                + [
                    "--depth",
                    str(depth),
                    "--env",
                    args.env,
                    "--num-seeds",
                    str(args.num_seeds),
                    "--total-env-steps",
                    str(args.total_env_steps),
                    "--num-evals",
                    str(args.num_evals),
                    "--run-dir",
                    str(run_dir),
                    "--no-progress",
                    "--no-tensorboard",
                ]
                + extra
            )
            seconds = _train(run_dir, flags)
            history = _read(run_dir)
            first_seed = json.loads((run_dir / "config.json").read_text())["seed"]  # --train-flags may set --seed
            seeds = list(range(first_seed, first_seed + args.num_seeds))
            last = history[-5:]
            score = {s: sum(r[_col("eval/success", s, args.num_seeds)] for r in last) / len(last) for s in seeds}
            time_at_goal = {s: sum(r[_col("eval/time_at_goal", s, args.num_seeds)] for r in last) / len(last) for s in seeds}
            mean, se = _mean_se(list(score.values()))
            tmean, tse = _mean_se(list(time_at_goal.values()))
            rows.append(
                {
                    "agent": name,
                    "depth": depth,
                    "success_per_seed": [round(score[s], 3) for s in seeds],
                    "success_mean": round(mean, 3),
                    "success_se": round(se, 3),
                    "time_at_goal_mean": round(tmean, 2),
                    "time_at_goal_se": round(tse, 2),
                    "wall_clock_s": seconds,
                    "run_dir": str(run_dir),
                    "command": "deepcrl train " + " ".join(flags),
                }
            )
            curves[f"{name} d{depth}"] = [
                {
                    "env_steps": r["env_steps"],
                    "success": r["eval/success"],
                    "time_at_goal": r["eval/time_at_goal"],
                    "success_se": r.get("eval/success/se", 0.0),
                    "time_at_goal_se": r.get("eval/time_at_goal/se", 0.0),
                }
                for r in history
            ]
    print_table(
        f"{args.env}: success (mean of the last 5 evaluations), {args.num_seeds} seeds, {args.total_env_steps:,} env steps",
        ["agent", "depth", "per seed", "success", "time at goal", "wall clock"],
        [
            [
                r["agent"],
                r["depth"],
                " ".join(f"{v:.2f}" for v in r["success_per_seed"]),
                f"{r['success_mean']:.2f} +- {r['success_se']:.2f}",
                f"{r['time_at_goal_mean']:.1f} +- {r['time_at_goal_se']:.1f}",
                "-" if r["wall_clock_s"] is None else f"{r['wall_clock_s']:.0f} s",
            ]
            for r in rows
        ],
    )
    out = output_path("compare_agents", args)
    settings = {
        "env": args.env,
        "depths": args.depths,
        "num_seeds": args.num_seeds,
        "total_env_steps": args.total_env_steps,
        "num_evals": args.num_evals,
        "quick": args.quick,
        "curves": curves,
    }
    write_results(out, "compare_agents", settings, rows, started)
    _plot(curves, args.plot or out.with_suffix(".png"), args)


def _col(name: str, seed: int, num_seeds: int) -> str:
    return name if num_seeds == 1 else f"{name}/seed{seed}"


def _mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, (var / n) ** 0.5


def _train(run_dir: Path, flags: list[str]) -> float | None:
    """Train (or resume) unless the run has finished; the wall clock of this call, None if nothing ran."""
    if (run_dir / "checkpoint" / "agent.msgpack").is_file():
        return None
    command = ["deepcrl", "train"] + (["--resume", str(run_dir)] if (run_dir / "state").is_dir() else flags)
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return round(time.perf_counter() - start, 1)


def _read(run_dir: Path) -> list[dict[str, float]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from deepcrl.logger import read_metrics

    return read_metrics(run_dir)


def _plot(curves: dict, path: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.depths), figsize=(5 * len(args.depths), 3.6), sharey=True, squeeze=False)
    for ax, depth in zip(axes[0], args.depths):
        for name in args.agents:
            rows = curves.get(f"{name} d{depth}", [])
            x = [r["env_steps"] / 1e6 for r in rows]
            y = [r["success"] for r in rows]
            se = [r["success_se"] for r in rows]
            (line,) = ax.plot(x, y, marker="o", markersize=3, label=name)
            ax.fill_between(x, [a - b for a, b in zip(y, se)], [a + b for a, b in zip(y, se)], alpha=0.2, color=line.get_color())
        ax.set_title(f"{args.env}, depth {depth}")
        ax.set_xlabel("env steps (M)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"success (mean +- s.e., {args.num_seeds} seeds)")
    axes[0][-1].legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"curves: {path}")


if __name__ == "__main__":
    main()
