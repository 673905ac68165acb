"""CRL against the TD and imitation baselines on the same networks: a CPU-sized version of the paper's
comparison (that TD-trained critics do not gain from depth the way CRL's do).

A sweep (deepcrl.sweep, the library behind `deepcrl sweep`) over the agents (CRL, SAC+HER, TD3+HER,
GCBC) and the depths, each point N seeds in one program, every other setting the library's default for
that agent (docs/baselines.md); the same as

    deepcrl sweep --agent crl,sac+her,td3+her,gcbc --depth 4,16 --seed 0,1,2 --env ENV --total-env-steps S \\
                  --num-evals E --no-tensorboard --out OUT

Points already finished in OUT are skipped and interrupted ones resumed (the sweep's own rules), so the
script can be stopped and started again. Prints the table of final scores (mean of the last 5 evaluations,
per seed, mean +- standard error over seeds), writes them with every evaluation's curve to the JSON,
and draws the curves (success and time at goal against env steps) to `--plot`.

    python benchmarks/compare_agents.py                                 # point_u_maze, depth 4 and 16, 3 seeds, 4M steps
    python benchmarks/compare_agents.py --quick                         # a smoke test: seconds per run
    python benchmarks/compare_agents.py --env ant_big_maze --depths 4 64 --total-env-steps 100000000 --train-flags "--preset paper"
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from pathlib import Path

from _common import header, make_parser, output_path, print_table, write_results

AGENTS = {"CRL": "crl", "SAC+HER": "sac+her", "TD3+HER": "td3+her", "GCBC": "gcbc"}  # name in the table -> the sweep's --agent value


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

    from deepcrl.sweep import run_sweep, spec_from_flags
    from deepcrl.viz import group_runs, load_runs

    preset = None
    if "--preset" in extra:  # a preset is the sweep's base, not a setting
        at = extra.index("--preset")
        preset, extra = extra[at + 1], extra[:at] + extra[at + 2 :]
    agents = ",".join(AGENTS[name] for name in args.agents)
    depths = ",".join(str(d) for d in args.depths)
    flags = ["--agent", agents, "--depth", depths, "--env", args.env, "--num-seeds", str(args.num_seeds)]
    flags += ["--total-env-steps", str(args.total_env_steps), "--num-evals", str(args.num_evals), "--no-tensorboard", *extra]
    spec = dataclasses.replace(spec_from_flags(flags), preset=preset)
    started_sweep = time.perf_counter()
    result = run_sweep(spec, sweep_dir=args.runs)
    if result.counts.get("done", 0) != len(result.entries):
        raise SystemExit(f"the sweep in {args.runs} did not finish: {result.counts}")
    rows, curves = [], {}
    groups = {(g.config.agent, g.config.her, g.config.depth): g for g in group_runs(load_runs([args.runs]))}
    for depth in args.depths:
        for name in args.agents:
            agent, _, her = AGENTS[name].partition("+")
            group = groups[(agent, bool(her), depth)]
            (run,) = group.runs
            seeds = sorted(run.seeds)
            mean, se, per_seed = group.final("eval/success")
            tmean, tse, _ = group.final("eval/time_at_goal")
            entry = next(e for e in result.entries if e.run_dir == str(run.run_dir))
            rows.append(
                {
                    "agent": name,
                    "depth": depth,
                    "seeds": seeds,
                    "success_per_seed": [round(float(v), 3) for v in per_seed],
                    "success_mean": round(mean, 3),
                    "success_se": round(se, 3),
                    "time_at_goal_mean": round(tmean, 2),
                    "time_at_goal_se": round(tse, 2),
                    "wall_clock_s": round(run.time_s[-1], 1),
                    "run_dir": str(run.run_dir),
                    "attempts": entry.attempts,
                }
            )
            steps, _, success = group.curves("eval/success")
            _, _, time_at_goal = group.curves("eval/time_at_goal")
            curves[f"{name} d{depth}"] = [
                {
                    "env_steps": float(steps[i]),
                    "success": float(success[:, i].mean()),
                    "time_at_goal": float(time_at_goal[:, i].mean()),
                    "success_se": _se(success[:, i]),
                    "time_at_goal_se": _se(time_at_goal[:, i]),
                }
                for i in range(len(steps))
            ]
    print(f"sweep {args.runs}: {time.perf_counter() - started_sweep:.0f} s in this call")
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
                f"{r['wall_clock_s']:.0f} s",
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


def _se(values) -> float:
    from deepcrl.metrics import mean_and_se

    return round(mean_and_se(values)[1], 4)


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
