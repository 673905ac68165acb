"""Compile time of one training epoch (`Trainer.epoch`) against network depth.

For each depth and network layout, builds `Trainer(Config(depth=..., network_unroll=...))`, takes the abstract
shape of its `TrainState` (`jax.eval_shape(trainer.init, key)`, so nothing is run) and times

    lowered = trainer.epoch.lower(state)   # trace + StableHLO
    compiled = lowered.compile()           # XLA

Layouts: "rolled" (Config.network_unroll=1, one residual block per scan iteration), "auto" (Config.network_unroll=0,
resolved by `networks.resolve_unroll`) and "unrolled" (Config.network_unroll=depth//4, only up to
--max-unrolled-depth because fully unrolled deep networks take minutes to compile). Layouts that
resolve to the same program at a depth are compiled once and share the measurement. With --repeats N,
the programs are compiled round-robin (every program once, N times over) and the median is reported, so
that a change of the machine's load during the run does not favour one depth.

The actor's depth is min(depth, --max-actor-depth) (default 512): the same as the critic's up to
depth 512, and at depth 1024 the paper's largest configuration, a 1024-layer critic with a 512-layer
actor. Each row records both.

    python benchmarks/compile_time.py            # depth 4, 16, 64, 256, 1024 at width 256, batch 256
    python benchmarks/compile_time.py --depths 4 16 64 256   # without the 1024-layer critic
    python benchmarks/compile_time.py --quick    # smoke test: tiny sizes, depth 4 and 256, two programs
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from _common import output_path, header, make_parser, print_table, summarize, write_results  # noqa: E402
import importlib  # noqa: E402
from deepcrl.config import Config  # noqa: E402

# deepcrl/__init__.py exports a function called `train`, which shadows the module attribute.
train_mod = importlib.import_module("deepcrl.programs")
net_mod = importlib.import_module("deepcrl.networks")
build_mod = importlib.import_module("deepcrl.build")

NAME = "compile_time"
TARGET_RATIO = 2.0  # the target: compiling at depth 256 and 1024 takes at most 2x depth 4 (auto layout)


def layouts_for(depth: int, max_unrolled_depth: int) -> list[tuple[str, int]]:
    """(layout name, Config.network_unroll) pairs measured at this depth."""
    out = [("rolled", 1), ("auto", 0)]
    if depth <= max_unrolled_depth:
        out.append(("unrolled", depth // 4))
    return out


def base_config(args) -> Config:
    if args.quick:
        return Config(
            width=32,
            batch_size=32,
            num_envs=32,
            unroll_length=5,
            updates_per_epoch=2,
            buffer_size=100,
            prefill_steps=10,
            progress=False,
            tensorboard=False,
            remat=args.remat,
        )
    return Config(width=args.width, batch_size=args.batch_size, progress=False, tensorboard=False, remat=args.remat)


def depth_config(base: Config, depth: int, unroll: int, max_actor_depth: int) -> Config:
    """`base` with a critic of `depth` layers and an actor of min(depth, max_actor_depth)."""
    return dataclasses.replace(base, depth=depth, critic_depth=depth, actor_depth=min(depth, max_actor_depth), network_unroll=unroll)


def time_compile(config: Config) -> tuple[float, float, int]:
    """(lower seconds, compile seconds, lines of StableHLO) for a fresh Trainer's epoch."""
    trainer = train_mod.Trainer(config)
    state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
    start = time.perf_counter()
    lowered = trainer.epoch.lower(state)
    mid = time.perf_counter()
    compiled = lowered.compile()
    end = time.perf_counter()
    del compiled
    hlo_lines = lowered.as_text().count("\n")
    return mid - start, end - mid, hlo_lines


def warm_up(config: Config, lower_epoch: bool) -> None:
    """Pay one-time costs (imports, tracing caches, XLA start-up) outside the measurements."""
    if lower_epoch:
        trainer = train_mod.Trainer(config)
        state = jax.eval_shape(trainer.init, jax.random.PRNGKey(0))
        trainer.epoch.lower(state)
    jax.jit(lambda x: jnp.tanh(x @ x)).lower(jnp.ones((8, 8))).compile()


def main() -> None:
    parser = make_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument(
        "--depths", type=int, nargs="+", default=None, help="critic depths to measure (default 4 16 64 256 1024; --quick: 4 256)"
    )
    parser.add_argument(
        "--max-actor-depth", type=int, default=512, help="actor depth = min(critic depth, this) (default 512: the paper's 1024/512 pair)"
    )
    parser.add_argument("--remat", action="store_true", help="compile with Config(remat=True)")
    parser.add_argument(
        "--max-unrolled-depth", type=int, default=None, help="largest depth compiled fully unrolled (default 64; --quick: 4)"
    )
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=None, help="compiles per program, median reported (default 3; --quick: 1)")
    args = parser.parse_args()
    started = time.time()
    header(NAME, args.quick)

    jax.config.update("jax_enable_compilation_cache", False)  # never read a persistent cache
    depths = args.depths or ([4, 256] if args.quick else [4, 16, 64, 256, 1024])
    depths = sorted(set(depths))
    max_unrolled = args.max_unrolled_depth if args.max_unrolled_depth is not None else (4 if args.quick else 64)
    repeats = args.repeats or (1 if args.quick else 3)
    base = base_config(args)

    warm_up(depth_config(base, depths[0], 1, args.max_actor_depth), lower_epoch=not args.quick)

    # The distinct programs, then their compiles round-robin (repeat r of every program before repeat r + 1 of
    # any), so that a change in the machine's load during the run hits every depth alike.
    programs: dict[tuple[int, int, int], dict] = {}  # (depth, critic blocks/iter, actor blocks/iter) -> measurement
    plan: list[tuple[int, str, int, int, tuple[int, int, int]]] = []
    for depth in depths:
        for layout, unroll in layouts_for(depth, max_unrolled):
            actor_depth = min(depth, args.max_actor_depth)
            resolved = net_mod.resolve_unroll(unroll, depth)
            key = (depth, resolved, net_mod.resolve_unroll(unroll, actor_depth))
            plan.append((depth, layout, unroll, actor_depth, key))
            if key not in programs:
                programs[key] = {
                    "layout": layout,
                    "config": depth_config(base, depth, unroll, args.max_actor_depth),
                    "lowers": [],
                    "compiles": [],
                    "totals": [],
                }
    for rep in range(repeats):
        for key, p in programs.items():
            lower_s, compile_s, hlo_lines = time_compile(p["config"])
            p["lowers"].append(lower_s)
            p["compiles"].append(compile_s)
            p["totals"].append(lower_s + compile_s)
            p["hlo_lines"] = hlo_lines
            print(
                f"  [{rep + 1}/{repeats}] depth {key[0]:5d} {p['layout']:8s} (blocks/iteration {key[1]:3d}): "
                f"lower {lower_s:.2f} s, compile {compile_s:.2f} s",
                flush=True,
            )

    rows: list[dict] = []
    first_layout: dict[tuple[int, int, int], str] = {}
    for depth, layout, unroll, actor_depth, key in plan:
        p = programs[key]
        shared_with = first_layout.setdefault(key, layout)
        shared_with = None if shared_with == layout else shared_with
        resolved = key[1]
        rows.append(
            {
                "depth": depth,
                "critic_depth": depth,
                "actor_depth": actor_depth,
                "layout": layout,
                "config_unroll": unroll,
                "blocks_per_iteration": resolved,
                "scan_iterations": (depth // 4) // resolved + (1 if (depth // 4) % resolved else 0),
                "lower_s": statistics.median(p["lowers"]),
                "compile_s": statistics.median(p["compiles"]),
                "total_s": statistics.median(p["totals"]),
                "total_timing": summarize(p["totals"]),
                "hlo_lines": p["hlo_lines"],
                "same_program_as": shared_with,
            }
        )

    d0 = depths[0]
    base_total = {r["layout"]: r["total_s"] for r in rows if r["depth"] == d0}
    base_min = {r["layout"]: r["total_timing"]["min_s"] for r in rows if r["depth"] == d0}
    for r in rows:
        r["min_total_s"] = r["total_timing"]["min_s"]
        r["ratio_to_first_depth"] = r["total_s"] / base_total[r["layout"]] if r["layout"] in base_total else None
        r["min_ratio_to_first_depth"] = r["min_total_s"] / base_min[r["layout"]] if r["layout"] in base_min else None

    print_table(
        f"Compile time of Trainer.epoch (width {base.width}, batch {base.batch_size}{', remat' if args.remat else ''}; median of {repeats})",
        [
            "critic depth",
            "actor depth",
            "layout",
            "blocks/iter",
            "HLO lines",
            "lower s",
            "compile s",
            "total s",
            f"x depth {d0}",
            "min total s",
            f"min x depth {d0}",
            "same program as",
        ],
        [
            [
                r["depth"],
                r["actor_depth"],
                r["layout"],
                r["blocks_per_iteration"],
                r["hlo_lines"],
                r["lower_s"],
                r["compile_s"],
                r["total_s"],
                r["ratio_to_first_depth"],
                r["min_total_s"],
                r["min_ratio_to_first_depth"],
                r["same_program_as"],
            ]
            for r in rows
        ],
    )

    target = None
    auto = {r["depth"]: r for r in rows if r["layout"] == "auto"}
    if 4 in auto:
        target = {"target": TARGET_RATIO}
        for deep in (256, 1024):
            if deep in auto:
                ratio = auto[deep]["total_s"] / auto[4]["total_s"]
                ratio_min = auto[deep]["min_total_s"] / auto[4]["min_total_s"]
                target[f"auto_ratio_{deep}_to_4"] = ratio
                target[f"auto_min_ratio_{deep}_to_4"] = ratio_min
                target[f"met_{deep}"] = ratio <= TARGET_RATIO
                print(
                    f"target (auto layout, depth {deep} <= {TARGET_RATIO:g}x depth 4): median ratio {ratio:.2f} -> "
                    f"{'MET' if ratio <= TARGET_RATIO else 'NOT MET'}; fastest-of-{repeats} ratio {ratio_min:.2f} "
                    f"(less sensitive to other processes on a shared machine)"
                )
        target["met"] = all(v for k, v in target.items() if k.startswith("met_")) if len(target) > 1 else None

    settings = {
        "quick": args.quick,
        "depths": depths,
        "max_unrolled_depth": max_unrolled,
        "max_actor_depth": args.max_actor_depth,
        "remat": args.remat,
        "repeats": repeats,
        "unroll_all_up_to_depth": net_mod.UNROLL_ALL_UP_TO_DEPTH,
        "deep_unroll": net_mod.DEEP_UNROLL,
        "config": base.to_dict(),
    }
    write_results(output_path(NAME, args), NAME, settings, rows, started, extra={"target": target})


if __name__ == "__main__":
    main()
