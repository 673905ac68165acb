"""SGD updates per second of the CRL update against network depth, rolled scan vs fully unrolled.

One CRL update trains three residual networks (actor, phi over (s, a), psi over g) on one batch. The
benchmark jits a `lax.scan` of `CRL.update` over K pre-sampled batches (random observations, actions
and goals of the task's shapes), so neither data collection nor replay sampling is timed, and times
calls of it with the agent state carried from call to call (donated, as in training).

Layouts: "rolled" (one residual block per scan iteration, Config.network_unroll=1) and "unrolled" (all
depth/4 blocks in one iteration, Config.network_unroll=depth//4; only up to --max-unrolled-depth). `--partial
N` adds "partial" rows with N blocks per iteration. The "auto" column says which one
`networks.resolve_unroll` picks today.

`--backward-saves` picks what the backward pass keeps of each residual block (`ResidualMLP.backward_saves`):
"auto" (the library default: "dots" for a scan of several iterations, "all" for one), "dots" (the four
matmul outputs; LayerNorm and activation recomputed) and/or "all" (every intermediate autodiff saves by
default, the behaviour before backward_saves="dots"). All programs of one depth
are compiled first and then timed interleaved (one call of each in turn, `--repeats` rounds; median),
so that load from other processes on a shared machine hits them alike; the 1-minute load average is
recorded with every call.

FLOPs per update come from XLA's cost analysis (`compiled.cost_analysis()`). XLA counts a while loop's
body once (the outer scan over K updates: one update, as wanted), so a rolled network would be
under-counted: the count is taken from the fully unrolled program of the same depth, and where no
unrolled program ran (depth > --max-unrolled-depth) it is extended linearly in depth from the two
shallowest exact counts (every block adds the same work; the other exact counts check the fit). Achieved GFLOP/s is compared with this
CPU's float32 matmul rate (`jnp.dot` under jit, 256^3 and 1024^3).

The last line recommends a value for `networks.UNROLL_ALL_UP_TO_DEPTH`.

    python benchmarks/sgd_throughput.py            # depth 4, 16, 64, 256; width 256, batch 256
    python benchmarks/sgd_throughput.py --quick    # smoke test: tiny sizes, depth 8
    python benchmarks/sgd_throughput.py --backward-saves all dots   # before / after backward_saves="dots", every layout
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from _common import (
    output_path,
    flops_of,
    header,
    load_average,
    make_parser,
    print_table,
    summarize,  # noqa: E402
    time_call,
    write_results,
)
from deepcrl.config import Config  # noqa: E402
from deepcrl.networks import BACKWARD_SAVES, resolve_backward_saves  # noqa: E402
from deepcrl.replay import Batch  # noqa: E402

# deepcrl/__init__.py exports a function called `train`, which shadows the module attribute.
train_mod = importlib.import_module("deepcrl.programs")
net_mod = importlib.import_module("deepcrl.networks")
build_mod = importlib.import_module("deepcrl.build")

NAME = "sgd_throughput"


# ----------------------------------------------------------------------------------------------
# matmul reference rate
# ----------------------------------------------------------------------------------------------


def matmul_rate(n: int, repeats: int, calls: int) -> dict:
    """float32 GFLOP/s of jit(jnp.dot) on n x n x n; `calls` back-to-back calls per timed repeat."""
    ka, kb = jax.random.split(jax.random.PRNGKey(1))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)

    def run():
        out = None
        for _ in range(calls):
            out = dot(a, b)
        return out

    timing = time_call(run, repeats=repeats, warmup=2)
    per_call = timing["median_s"] / calls
    return {"n": n, "calls_per_repeat": calls, "seconds_per_matmul": per_call, "gflops": 2.0 * n**3 / per_call / 1e9, "timing": timing}


# ----------------------------------------------------------------------------------------------
# the CRL update
# ----------------------------------------------------------------------------------------------


def random_batches(env, k: int, batch_size: int, key: jax.Array) -> Batch:
    """K batches of plausible shapes and ranges (the values do not change the work done)."""
    ko, ka, kg = jax.random.split(key, 3)
    extent = float(max(env.layout.height, env.layout.width)) * env.cell_size
    return Batch(
        obs=jax.random.uniform(ko, (k, batch_size, env.state_size), jnp.float32, 0.0, extent),
        action=jax.random.uniform(ka, (k, batch_size, env.action_size), jnp.float32, -1.0, 1.0),
        goal=jax.random.uniform(kg, (k, batch_size, env.goal_size), jnp.float32, 0.0, extent),
        offset=jnp.ones((k, batch_size), jnp.int32),
    )


def build(config: Config, k: int, saves: str = "auto"):
    """(agent state, batches, keys, jitted scan of K updates) for one config; `saves`: the networks' backward_saves."""
    env, agent = build_mod.build_task_and_agent(config)
    agent.actor = agent.actor.clone(backward_saves=saves)
    agent.sa_encoder = agent.sa_encoder.clone(backward_saves=saves)
    agent.g_encoder = agent.g_encoder.clone(backward_saves=saves)
    key = jax.random.PRNGKey(config.seed)
    init_key, data_key, update_key = jax.random.split(key, 3)
    state = jax.jit(agent.init)(init_key)
    batches = random_batches(env, k, config.batch_size, data_key)
    keys = jax.random.split(update_key, k)

    def run(state, batches, keys):
        def body(s, xs):
            batch, step_key = xs
            s, metrics = agent.update(s, batch, step_key)
            return s, metrics["critic/loss"]

        state, losses = jax.lax.scan(body, state, (batches, keys))
        return state, jnp.mean(losses)

    return state, batches, keys, jax.jit(run, donate_argnums=0)


def compile_program(config: Config, k: int, saves: str = "auto"):
    state, batches, keys, fn = build(config, k, saves)
    start = time.perf_counter()
    compiled = fn.lower(state, batches, keys).compile()
    compile_s = time.perf_counter() - start
    return state, batches, keys, compiled, compile_s


class Program:
    """One compiled scan of K updates with its agent state carried (donated) from call to call."""

    def __init__(self, config: Config, k: int, saves: str):
        self.state, self.batches, self.keys, self.compiled, self.compile_s = compile_program(config, k, saves)
        self.times: list[float] = []
        self.loads: list[list[float] | None] = []
        self.loss = None

    def call(self):
        self.state, self.loss = self.compiled(self.state, self.batches, self.keys)
        return self.state, self.loss

    def timed_call(self) -> None:
        start = time.perf_counter()
        jax.block_until_ready(self.call())
        self.times.append(time.perf_counter() - start)
        self.loads.append(load_average())


def measure_interleaved(programs: list[Program], repeats: int) -> list[dict]:
    """Warm every program up, then time one call of each in turn, `repeats` rounds; median per program."""
    for prog in programs:
        jax.block_until_ready(prog.call())
    for _ in range(repeats):
        for prog in programs:
            prog.timed_call()
    out = []
    for prog in programs:
        timing = summarize(prog.times)
        timing["load_average_1_5_15"] = prog.loads
        out.append(
            {
                "compile_s": prog.compile_s,
                "seconds_per_call": timing["median_s"],
                "timing": timing,
                "flops_xla": flops_of(prog.compiled),  # one update: the outer scan body counted once
                "final_critic_loss": float(prog.loss),
            }
        )
    return out


def probe_flops(config: Config) -> float | None:
    """Exact XLA FLOPs of one update with fully unrolled networks (a 1-step scan, compiled, not run)."""
    _, _, _, compiled, _ = compile_program(dataclasses.replace(config, network_unroll=config.depth // 4), 1, "all")
    return flops_of(compiled)


def matmul_flops_estimate(batch: int, width: int, depth: int) -> float:
    """Hand count of the W x W matmul FLOPs in the residual blocks of one update.

    Per block layer and B rows, 2BW^2 per forward pass and 4BW^2 per backward (input and weight
    gradients): actor loss = actor fwd+bwd (6) + phi fwd + input-gradient (4) + psi fwd (2);
    critic loss = phi fwd+bwd (6) + psi fwd+bwd (6). Total 24 B W^2 per layer of depth.
    """
    return 24.0 * batch * width * width * depth


def updates_per_call(depth: int, quick: bool) -> int:
    if quick:
        return 5
    return max(3, min(20, 640 // depth))


def recommend(rows: list[dict], min_speedup: float) -> tuple[int | None, str]:
    """Largest depth up to which a fully unrolled network beat the rolled scan at every measured depth."""
    by_depth: dict[int, dict[str, dict]] = {}
    for r in rows:
        by_depth.setdefault(r["depth"], {})[r["layout"]] = r
    compared = sorted(d for d, v in by_depth.items() if "rolled" in v and "unrolled" in v and d // 4 > 1)
    if not compared:
        return None, "no depth with more than one block was measured both rolled and unrolled"
    best, parts, still = 4, [], True
    for d in compared:
        speedup = by_depth[d]["unrolled"]["updates_per_s"] / by_depth[d]["rolled"]["updates_per_s"]
        ct = (by_depth[d]["unrolled"]["compile_s"], by_depth[d]["rolled"]["compile_s"])
        parts.append(f"depth {d}: unrolled {speedup:.2f}x rolled speed, compile {ct[0]:.0f} s vs {ct[1]:.0f} s")
        still = still and speedup >= min_speedup
        if still:
            best = d
    reason = "; ".join(parts)
    if best == compared[-1]:
        reason += f" (unrolled still faster at the deepest compared depth {best}; deeper was not measured unrolled)"
    return best, reason


def main() -> None:
    parser = make_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=None, help="depths (default 4 16 64 256; --quick: 8)")
    parser.add_argument("--max-unrolled-depth", type=int, default=None, help="largest depth run fully unrolled (default 64; --quick: 8)")
    parser.add_argument("--partial", type=int, default=None, metavar="N", help="also run N blocks per scan iteration where depth/4 > N")
    parser.add_argument("--width", type=int, default=None, help="hidden width of all three networks (default 256; --quick: 32)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 256; --quick: 32")
    parser.add_argument("--env", default="point_u_maze", help="task whose observation sizes are used (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per program (default 5; --quick: 2)")
    parser.add_argument(
        "--backward-saves",
        nargs="+",
        choices=BACKWARD_SAVES,
        default=["auto"],
        help="what each residual block keeps for the backward pass; several values compare them (default: auto)",
    )
    parser.add_argument(
        "--min-speedup", type=float, default=1.05, help="unrolled must be this much faster to be recommended (default %(default)s)"
    )
    args = parser.parse_args()
    started = time.time()
    header(NAME, args.quick)

    quick = args.quick
    depths = sorted(set(args.depths or ([8] if quick else [4, 16, 64, 256])))
    max_unrolled = args.max_unrolled_depth if args.max_unrolled_depth is not None else (8 if quick else 64)
    width = args.width or (32 if quick else 256)
    batch = args.batch_size or (32 if quick else 256)
    repeats = args.repeats or (2 if quick else 5)
    base = Config(env=args.env, width=width, batch_size=batch, progress=False, tensorboard=False)

    # --- the CPU's matmul rate
    sizes = [256, 1024]
    matmul = [
        matmul_rate(n, repeats=3 if quick else 7, calls=(20 if n <= 256 else 3) if quick else (100 if n <= 256 else 10)) for n in sizes
    ]
    for m in matmul:
        print(f"  matmul {m['n']}^3: {m['gflops']:.1f} GFLOP/s", flush=True)
    rate = {m["n"]: m["gflops"] for m in matmul}

    # --- throughput
    saves_list = list(dict.fromkeys(args.backward_saves))
    rows: list[dict] = []
    for depth in depths:
        blocks = depth // 4
        layouts = [("rolled", 1)]
        if depth <= max_unrolled:
            layouts.append(("unrolled", blocks))
        if args.partial and blocks > args.partial:
            layouts.append(("partial", args.partial))
        auto_unroll = net_mod.resolve_unroll(0, depth)
        k = updates_per_call(depth, quick)
        # compile every distinct program of this depth, then time them interleaved
        done: dict[tuple[int, str], dict] = {}
        plan, programs = [], []
        for saves in saves_list:
            for layout, unroll in layouts:
                resolved = net_mod.resolve_unroll(unroll, depth)
                plan.append((saves, layout, resolved))
                if (resolved, saves) not in done:
                    done[(resolved, saves)] = {"layout": layout, "index": len(programs)}
                    programs.append(Program(dataclasses.replace(base, depth=depth, network_unroll=unroll), k, saves))
        measured = measure_interleaved(programs, repeats)
        for saves, layout, resolved in plan:
            first = done[(resolved, saves)]
            m = measured[first["index"]]
            shared = None if first["layout"] == layout else first["layout"]
            ups = k / m["seconds_per_call"]
            row = {
                "depth": depth,
                "layout": layout,
                "backward_saves": saves,
                "blocks_per_iteration": resolved,
                "auto_picks_this": resolved == auto_unroll,
                "updates_per_call": k,
                "updates_per_s": ups,
                "ms_per_update": 1000.0 / ups,
                "compile_s": m["compile_s"],
                # rolled programs are under-counted by XLA (loop body once): exact only when unrolled
                "flops_per_update_xla_exact": m["flops_xla"] if resolved == blocks else None,
                "flops_per_update_xla_raw": m["flops_xla"],
                "matmul_flops_estimate": matmul_flops_estimate(batch, width, depth),
                "final_critic_loss": m["final_critic_loss"],
                "timing": m["timing"],
                "same_program_as": shared,
            }
            rows.append(row)
            print(
                f"  depth {depth:4d} {layout:8s} (blocks/iter {resolved:3d}) saves {saves:4s}: {ups:8.2f} updates/s, "
                f"compile {m['compile_s']:.1f} s",
                flush=True,
            )

    # --- FLOPs per update: XLA's exact count where the depth ran unrolled, else linear in depth
    # (where both were measured, the count of the "all" program: the "dots" one adds the recomputed
    # elementwise work of LayerNorm and activation, well under 1%, which is not useful work)
    exact: dict[int, float] = {}
    for r in sorted(rows, key=lambda r: r["backward_saves"] != "all"):
        if r["flops_per_update_xla_exact"] is not None:
            exact.setdefault(r["depth"], r["flops_per_update_xla_exact"])
    fit = None
    if any(r["depth"] not in exact for r in rows):
        points = dict(exact)
        for d in (4, 8):  # make sure two depths are known
            if len(points) >= 2:
                break
            if d not in points:
                points[d] = probe_flops(dataclasses.replace(base, depth=d))
        (da, fa), (db, fb) = sorted(points.items())[:2]
        if fa is not None and fb is not None:
            per_block = (fb - fa) / ((db - da) // 4)
            fit = {"depths": [da, db], "flops": [fa, fb], "per_block": per_block, "per_depth_4": fa - (da // 4 - 1) * per_block}
            for d, x in exact.items():
                predicted = fit["per_depth_4"] + (d // 4 - 1) * per_block
                if abs(x - predicted) > 0.01 * x:
                    print(f"  warning: depth {d}: XLA counts {x:.4g} FLOPs per update, the linear fit {predicted:.4g}")
    for r in rows:
        if r["depth"] in exact:
            flops, source = exact[r["depth"]], "xla (unrolled program)"
        elif fit is not None:
            flops, source = fit["per_depth_4"] + (r["depth"] // 4 - 1) * fit["per_block"], "linear fit of xla counts"
        else:
            flops, source = None, None
        gflops = None if flops is None else flops * r["updates_per_s"] / 1e9
        r["flops_per_update"] = flops
        r["flops_source"] = source
        r["gflops_per_s"] = gflops
        r["pct_of_matmul_256"] = None if gflops is None else 100.0 * gflops / rate[256]
        r["pct_of_matmul_1024"] = None if gflops is None else 100.0 * gflops / rate[1024]

    print_table(
        f"CRL update throughput (3 networks, width {width}, batch {batch}; median of {repeats}); "
        f"matmul 256^3 {rate[256]:.1f} GFLOP/s, 1024^3 {rate[1024]:.1f} GFLOP/s",
        [
            "depth",
            "layout",
            "saves",
            "blocks/iter",
            "auto",
            "updates/s",
            "ms/update",
            "GFLOP/update",
            "GFLOP/s",
            "% mm256",
            "% mm1024",
            "compile s",
        ],
        [
            [
                r["depth"],
                r["layout"],
                r["backward_saves"],
                r["blocks_per_iteration"],
                "yes" if r["auto_picks_this"] else "",
                r["updates_per_s"],
                r["ms_per_update"],
                None if r["flops_per_update"] is None else r["flops_per_update"] / 1e9,
                r["gflops_per_s"],
                r["pct_of_matmul_256"],
                r["pct_of_matmul_1024"],
                r["compile_s"],
            ]
            for r in rows
        ],
    )

    # The recommendation compares the programs the library default ("auto") builds: rows measured with
    # "auto", or with the value "auto" resolves to for that layout ("dots" rolled, "all" unrolled).
    def is_default(r: dict) -> bool:
        return r["backward_saves"] in ("auto", resolve_backward_saves("auto", r["depth"], r["blocks_per_iteration"]))

    default_rows = [r for r in rows if is_default(r) and (r["backward_saves"] == "auto" or "auto" not in saves_list)]
    value, reason = recommend(default_rows, args.min_speedup)
    reason = f"backward_saves=auto: {reason}"
    if value is None:
        line = f"recommendation: none for UNROLL_ALL_UP_TO_DEPTH (currently {net_mod.UNROLL_ALL_UP_TO_DEPTH}): {reason}"
    else:
        line = (
            f"recommendation: UNROLL_ALL_UP_TO_DEPTH = {value} (currently {net_mod.UNROLL_ALL_UP_TO_DEPTH}); "
            f"unrolled counts as faster at >= {args.min_speedup:g}x; {reason}"
        )
    print(line)

    settings = {
        "quick": quick,
        "depths": depths,
        "max_unrolled_depth": max_unrolled,
        "partial": args.partial,
        "repeats": repeats,
        "width": width,
        "batch_size": batch,
        "env": args.env,
        "min_speedup": args.min_speedup,
        "backward_saves": saves_list,
        "unroll_all_up_to_depth": net_mod.UNROLL_ALL_UP_TO_DEPTH,
        "deep_unroll": net_mod.DEEP_UNROLL,
        "config": base.to_dict(),
    }
    extra = {"matmul": matmul, "flops_fit": fit, "recommendation": {"unroll_all_up_to_depth": value, "reason": reason, "line": line}}
    write_results(output_path(NAME, args), NAME, settings, rows, started, extra=extra)


if __name__ == "__main__":
    main()
