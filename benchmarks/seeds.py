"""Cost of training N seeds in one program (`--num-seeds N`) against N separate single-seed runs.

For each size and each N, builds `Trainer(Config(num_seeds=N, ...))` (N > 1 vmaps the whole
training state and the epoch program over a leading seed axis), compiles `trainer.init` and
`trainer.epoch` ahead of time (`.lower(...).compile()`, timed: that is the compile time reported),
initialises the state with `run_keys(config)[0]` and runs a few warm-up epochs. Then the programs of
all N are timed interleaved: each round calls every program for `--epochs-per-sample` epochs in turn
(`jax.block_until_ready` after the last), `--repeats` rounds, so that load from other processes on a
shared machine falls on all of them alike; the 1-minute load average is recorded with every sample.

    ratio(N) = seconds per epoch of the N-seed program / (N x seconds per epoch of the 1-seed program)

< 1 means one N-seed run costs less than N single-seed runs one after another (the alternative on a
machine whose cores one run already occupies); 1 means no saving. The ratio is computed from the
medians and, more robustly against load swings, as the median over rounds of the per-round ratio
(the 1-seed sample of the same round in the denominator). Compile time is reported per program; N
separate runs would each pay the 1-seed compile (or hit the compilation cache).

    python benchmarks/seeds.py            # default Config() sizes and a small size, N = 1 2 4 8
    python benchmarks/seeds.py --quick    # smoke test: tiny sizes, N = 1 2
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import EpochProgram, header, make_parser, output_path, print_table, summarize, write_results  # noqa: E402
from deepcrl.config import Config  # noqa: E402

NAME = "seeds"

# name -> Config overrides (on top of Config() defaults)
SIZES = {
    # Config() defaults: point_u_maze, depth 8, width 64, 256 envs x 25 steps, 40 updates of batch 256
    "default": {},
    # a smaller run: depth 4, width 32, 64 envs x 25 steps, 20 updates of batch 64
    "small": dict(depth=4, width=32, num_envs=64, updates_per_epoch=20, batch_size=64),
    # --quick only
    "tiny": dict(depth=4, width=32, num_envs=32, unroll_length=5, updates_per_epoch=4, batch_size=32, buffer_size=100, prefill_steps=10),
}


def main() -> None:
    parser = make_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="values of N (default 1 2 4 8; --quick: 1 2)")
    parser.add_argument(
        "--sizes", nargs="+", choices=sorted(SIZES), default=None, help="sizes to run (default: default small; --quick: tiny)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 7; --quick: 3)")
    parser.add_argument("--epochs-per-sample", type=int, default=None, help="epochs per timed sample (default 2; --quick: 2)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed epochs per program before timing (default %(default)s)")
    args = parser.parse_args()
    started = time.time()
    header(NAME, args.quick)

    quick = args.quick
    seeds = sorted(set(args.seeds or ([1, 2] if quick else [1, 2, 4, 8])))
    if 1 not in seeds:
        seeds = [1, *seeds]  # the baseline
    sizes = args.sizes or (["tiny"] if quick else ["default", "small"])
    repeats = args.repeats or (3 if quick else 7)
    per_sample = args.epochs_per_sample or 2

    rows: list[dict] = []
    for size in sizes:
        base = dataclasses.replace(Config(progress=False, tensorboard=False), **SIZES[size])
        programs: dict[int, EpochProgram] = {}
        for n in seeds:
            prog = EpochProgram(dataclasses.replace(base, num_seeds=n))
            programs[n] = prog
            print(f"  {size}: N={n}: compile init {prog.init_compile_s:.1f} s, epoch {prog.epoch_compile_s:.1f} s", flush=True)
        for prog in programs.values():
            prog.run(args.warmup)
        for _ in range(repeats):
            for prog in programs.values():
                prog.sample(per_sample)
        one = programs[1]
        t1 = statistics.median(one.times)
        for n, prog in programs.items():
            tn = statistics.median(prog.times)
            per_round = [a / (n * b) for a, b in zip(prog.times, one.times)]
            timing = summarize(prog.times)
            timing["load_average_1_5_15"] = prog.loads
            c = prog.config
            row = {
                "size": size,
                "num_seeds": n,
                "depth": c.depth,
                "width": c.width,
                "num_envs": c.num_envs,
                "unroll_length": c.unroll_length,
                "updates_per_epoch": c.updates_per_epoch,
                "batch_size": c.batch_size,
                "seconds_per_epoch": tn,
                "seconds_per_seed_epoch": tn / n,
                "separate_runs_seconds_per_epoch": n * t1,
                "ratio": tn / (n * t1),
                "ratio_median_per_round": statistics.median(per_round),
                "ratio_per_round": per_round,
                "seed_env_steps_per_s": n * c.env_steps_per_epoch / tn,
                "seed_updates_per_s": n * c.updates_per_epoch / tn,
                "init_compile_s": prog.init_compile_s,
                "init_run_s": prog.init_run_s,
                "epoch_compile_s": prog.epoch_compile_s,
                "epoch_compile_ratio_to_1_seed": prog.epoch_compile_s / one.epoch_compile_s,
                "load_median_1min": statistics.median(load[0] for load in prog.loads if load),
                "timing": timing,
            }
            rows.append(row)
            print(
                f"  {size}: N={n}: {tn:.3f} s/epoch, ratio {row['ratio']:.2f} (per round {row['ratio_median_per_round']:.2f})", flush=True
            )
        del programs

    print_table(
        f"--num-seeds N vs N separate runs (seconds per epoch, median of {repeats} samples of {per_sample} epochs, interleaved)",
        [
            "size",
            "N",
            "depth",
            "width",
            "envs x steps",
            "updates x batch",
            "s/epoch",
            "N x 1-seed s/epoch",
            "ratio",
            "ratio (per round)",
            "seed-updates/s",
            "compile epoch s",
            "compile init s",
            "load (1 min)",
        ],
        [
            [
                r["size"],
                r["num_seeds"],
                r["depth"],
                r["width"],
                f"{r['num_envs']}x{r['unroll_length']}",
                f"{r['updates_per_epoch']}x{r['batch_size']}",
                r["seconds_per_epoch"],
                r["separate_runs_seconds_per_epoch"],
                r["ratio"],
                r["ratio_median_per_round"],
                r["seed_updates_per_s"],
                r["epoch_compile_s"],
                r["init_compile_s"],
                r["load_median_1min"],
            ]
            for r in rows
        ],
    )
    print("ratio = N-seed s/epoch / (N x 1-seed s/epoch); < 1: one N-seed run is cheaper than N runs one after another")

    settings = {
        "quick": quick,
        "seeds": seeds,
        "sizes": {s: SIZES[s] for s in sizes},
        "repeats": repeats,
        "epochs_per_sample": per_sample,
        "warmup_epochs": args.warmup,
        "config": Config(progress=False, tensorboard=False).to_dict(),
    }
    write_results(output_path(NAME, args), NAME, settings, rows, started)


if __name__ == "__main__":
    main()
