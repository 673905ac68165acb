"""Compile time of one training epoch (`Trainer.epoch`) against network depth.

For each depth and network layout, builds `Trainer(Config(depth=..., unroll=...))`, takes the abstract
shape of its `TrainState` (`jax.eval_shape(trainer.init, key)`, so nothing is run) and times

    lowered = trainer.epoch.lower(state)   # trace + StableHLO
    compiled = lowered.compile()           # XLA

Layouts: "rolled" (Config.unroll=1, one residual block per scan iteration), "auto" (Config.unroll=0,
resolved by `training.resolve_unroll`) and "unrolled" (Config.unroll=depth//4, only up to
--max-unrolled-depth because fully unrolled deep networks take minutes to compile). Layouts that
resolve to the same program at a depth are compiled once and share the measurement.

    python benchmarks/compile_time.py            # depth 4, 16, 64, 256 at width 256, batch 256
    python benchmarks/compile_time.py --with-1024
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
train_mod = importlib.import_module("deepcrl.training")

NAME = "compile_time"
TARGET_RATIO = 2.0  # the target: compile at depth 256 at most 2x depth 4 (auto layout)


def layouts_for(depth: int, max_unrolled_depth: int) -> list[tuple[str, int]]:
    """(layout name, Config.unroll) pairs measured at this depth."""
    out = [("rolled", 1), ("auto", 0)]
    if depth <= max_unrolled_depth:
        out.append(("unrolled", depth // 4))
    return out


def base_config(args) -> Config:
    if args.quick:
        return Config(width=32, batch_size=32, num_envs=32, unroll_length=5, updates_per_epoch=2,
                      buffer_size=100, prefill_steps=10, progress=False, tensorboard=False)
    return Config(width=args.width, batch_size=args.batch_size, progress=False, tensorboard=False)


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
    parser.add_argument("--with-1024", action="store_true", help="also measure depth 1024 (rolled and auto)")
    parser.add_argument("--depths", type=int, nargs="+", default=None, help="depths to measure (default 4 16 64 256; --quick: 4 256)")
    parser.add_argument("--max-unrolled-depth", type=int, default=None, help="largest depth compiled fully unrolled (default 64; --quick: 4)")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=None, help="compiles per program, median reported (default 3; --quick: 1)")
    args = parser.parse_args()
    started = time.time()
    header(NAME, args.quick)

    jax.config.update("jax_enable_compilation_cache", False)  # never read a persistent cache
    depths = args.depths or ([4, 256] if args.quick else [4, 16, 64, 256])
    if args.with_1024 and 1024 not in depths:
        depths = depths + [1024]
    depths = sorted(set(depths))
    max_unrolled = args.max_unrolled_depth if args.max_unrolled_depth is not None else (4 if args.quick else 64)
    repeats = args.repeats or (1 if args.quick else 3)
    base = base_config(args)

    warm_up(dataclasses.replace(base, depth=depths[0], unroll=1), lower_epoch=not args.quick)

    measured: dict[tuple[int, int], dict] = {}  # (depth, resolved unroll) -> measurement
    rows: list[dict] = []
    for depth in depths:
        for layout, unroll in layouts_for(depth, max_unrolled):
            resolved = train_mod.resolve_unroll(unroll, depth)
            key = (depth, resolved)
            shared_with = None
            if key not in measured:
                config = dataclasses.replace(base, depth=depth, unroll=unroll)
                lowers, compiles, totals = [], [], []
                for _ in range(repeats):
                    lower_s, compile_s, hlo_lines = time_compile(config)
                    lowers.append(lower_s)
                    compiles.append(compile_s)
                    totals.append(lower_s + compile_s)
                measured[key] = {
                    "layout": layout,
                    "lower_s": statistics.median(lowers),
                    "compile_s": statistics.median(compiles),
                    "total_s": statistics.median(totals),
                    "total": summarize(totals),
                    "hlo_lines": hlo_lines,
                }
                print(f"  depth {depth:5d} {layout:8s} (blocks/iteration {resolved:3d}): "
                      f"lower {measured[key]['lower_s']:.2f} s, compile {measured[key]['compile_s']:.2f} s", flush=True)
            else:
                shared_with = measured[key]["layout"]
            m = measured[key]
            rows.append({
                "depth": depth,
                "layout": layout,
                "config_unroll": unroll,
                "blocks_per_iteration": resolved,
                "scan_iterations": (depth // 4) // resolved + (1 if (depth // 4) % resolved else 0),
                "lower_s": m["lower_s"],
                "compile_s": m["compile_s"],
                "total_s": m["total_s"],
                "total_timing": m["total"],
                "hlo_lines": m["hlo_lines"],
                "same_program_as": shared_with,
            })

    d0 = depths[0]
    base_total = {r["layout"]: r["total_s"] for r in rows if r["depth"] == d0}
    for r in rows:
        r["ratio_to_first_depth"] = r["total_s"] / base_total[r["layout"]] if r["layout"] in base_total else None

    print_table(
        f"Compile time of Trainer.epoch (width {base.width}, batch {base.batch_size}; median of {repeats})",
        ["depth", "layout", "blocks/iter", "lower s", "compile s", "total s", f"x depth {d0}", "same program as"],
        [[r["depth"], r["layout"], r["blocks_per_iteration"], r["lower_s"], r["compile_s"], r["total_s"],
          r["ratio_to_first_depth"], r["same_program_as"]] for r in rows],
    )

    target = None
    auto = {r["depth"]: r for r in rows if r["layout"] == "auto"}
    if 4 in auto and 256 in auto:
        ratio = auto[256]["total_s"] / auto[4]["total_s"]
        target = {"auto_ratio_256_to_4": ratio, "target": TARGET_RATIO, "met": ratio <= TARGET_RATIO}
        print(f"target (auto layout, depth 256 <= {TARGET_RATIO:g}x depth 4): ratio {ratio:.2f} -> "
              f"{'MET' if target['met'] else 'NOT MET'}")

    settings = {
        "quick": args.quick,
        "depths": depths,
        "max_unrolled_depth": max_unrolled,
        "repeats": repeats,
        "unroll_all_up_to_depth": train_mod.UNROLL_ALL_UP_TO_DEPTH,
        "deep_unroll": train_mod.DEEP_UNROLL,
        "config": base.to_dict(),
    }
    write_results(output_path(NAME, args), NAME, settings, rows, started, extra={"target": target})


if __name__ == "__main__":
    main()
