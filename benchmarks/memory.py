"""Memory of one CRL update against critic depth, with and without remat, next to deepcrl.estimate; and
what remat costs in time.

Memory: for each critic depth and remat setting, the agent a run would build
(`build.build_task_and_agent(Config(...))`, so depth <= 16 is unrolled and deeper networks use the rolled scan)
is lowered and compiled on abstract inputs with its state donated, as a training epoch donates it, and
XLA's `memory_analysis()` is read (nothing runs, nothing is allocated):

    peak = argument bytes (parameters, Adam state, batch) + temp bytes (gradients, activations, transients)

(the donated state's outputs alias the arguments). Next to it: `deepcrl.estimate`'s analytic numbers
(temp = gradients + activations; peak = parameters + Adam + batch + temp) and their ratio to XLA's.

Per device: the same update data parallel over D simulated CPU devices
(XLA_FLAGS=--xla_force_host_platform_device_count=D, one subprocess per D): `CRL(config, axis_name)`
inside `jax.shard_map` with the state replicated and the batch split, so each device runs B / D rows and
all-gathers the goal representations (its logits are B / D x B). XLA's per-device temp against the
estimate with num_devices = D.

Time: updates/s of the same jitted update run on real (zero-initialised) data, remat off and on
interleaved (median of --repeats calls each, warm-up excluded), at --time-depths.

    python benchmarks/memory.py              # depth 4 16 64 256 1024, width 256, batch 256; time at 16 64 256;
                                             # per device at depth 64 for D = 2, 4
    python benchmarks/memory.py --quick      # smoke test: width 32, depths 4 and 64, batch 32
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from _common import header, load_average, make_parser, output_path, print_table, summarize, write_results  # noqa: E402
import importlib  # noqa: E402
from deepcrl import estimate, replay  # noqa: E402
from deepcrl.config import Config  # noqa: E402

train_mod = importlib.import_module("deepcrl.programs")
net_mod = importlib.import_module("deepcrl.networks")
build_mod = importlib.import_module("deepcrl.build")  # deepcrl.train is a function

NAME = "memory"
MB = 1e6


def make_config(args, depth: int, remat: bool) -> Config:
    return Config(
        env=args.env,
        critic_depth=depth,
        actor_depth=args.actor_depth,
        depth=4,
        width=args.width,
        batch_size=args.batch_size,
        remat=remat,
        progress=False,
        tensorboard=False,
    )


def measure_memory(config: Config) -> dict:
    env, agent = build_mod.build_task_and_agent(config)
    start = time.perf_counter()
    xla = estimate.update_memory_from_xla(agent, config.batch_size, donate=True)
    compile_s = time.perf_counter() - start
    est = estimate.estimate_memory(config, env.state_size, env.goal_size, env.action_size, num_devices=1)
    batch_bytes = config.batch_size * 4 * (env.state_size + env.action_size + env.goal_size)  # offsets unused: jit drops them
    est_peak = est.state_bytes + batch_bytes + est.update_temp_bytes
    xla_peak = xla["argument"] + xla["temp"]  # outputs alias the donated arguments
    return {
        "critic_blocks_per_iteration": agent.config.critic_unroll,
        "critic_keeps": estimate.critic_policy(config),  # remat, or the resolved backward_saves policy
        "xla_temp_bytes": xla["temp"],
        "xla_argument_bytes": xla["argument"],
        "xla_output_bytes": xla["output"],
        "xla_alias_bytes": xla["alias"],
        "xla_peak_bytes": xla_peak,
        "est_param_bytes": est.param_bytes,
        "est_optimizer_bytes": est.optimizer_bytes,
        "est_gradient_bytes": est.gradient_bytes,
        "est_activation_bytes": est.activation_bytes,
        "est_saved_bytes": est.saved_bytes,
        "est_temp_bytes": est.update_temp_bytes,
        "est_peak_bytes": est_peak,
        "temp_ratio_est_to_xla": est.update_temp_bytes / xla["temp"],
        "peak_ratio_est_to_xla": est_peak / xla_peak,
        "compile_s": compile_s,
    }


def per_device_child(depth: int, devices: int, width: int, batch_size: int) -> dict:
    """Run in a subprocess whose XLA_FLAGS simulate `devices` CPU devices: per-device memory of the sharded update."""
    import types

    import numpy as np
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    from deepcrl.agents.crl import CRL, CRLConfig

    s, g, a = 4, 2, 2
    cfg = CRLConfig(
        state_size=s,
        goal_size=g,
        action_size=a,
        critic_depth=depth,
        actor_depth=4,
        critic_width=width,
        actor_width=width,
        critic_unroll=net_mod.resolve_unroll(0, depth),
        actor_unroll=net_mod.resolve_unroll(0, 4),
    )
    agent = CRL(cfg, axis_name="data" if devices > 1 else None)
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    f32 = jnp.float32
    batch = replay.Batch(
        obs=jax.ShapeDtypeStruct((batch_size, s), f32),
        action=jax.ShapeDtypeStruct((batch_size, a), f32),
        goal=jax.ShapeDtypeStruct((batch_size, g), f32),
        offset=jax.ShapeDtypeStruct((batch_size,), jnp.int32),
    )
    key = jax.eval_shape(lambda: jax.random.PRNGKey(0))
    fn = agent.update
    if devices > 1:
        mesh = Mesh(np.array(jax.devices()[:devices]), ("data",))
        fn = jax.shard_map(agent.update, mesh=mesh, in_specs=(P(), P("data"), P()), out_specs=(P(), P()), check_vma=True)
    m = jax.jit(fn, donate_argnums=0).lower(state, batch, key).compile().memory_analysis()
    est_cfg = types.SimpleNamespace(**{f: getattr(cfg, f) for f in cfg.__dataclass_fields__}, batch_size=batch_size)
    est = estimate.estimate_memory(est_cfg, s, g, a, num_devices=devices)
    return {
        "kind": "per_device",
        "critic_depth": depth,
        "actor_depth": 4,
        "devices": devices,
        "rows_per_device": batch_size // devices,
        "xla_temp_bytes": int(m.temp_size_in_bytes),
        "xla_argument_bytes": int(m.argument_size_in_bytes),
        "est_temp_bytes": est.update_temp_bytes,
        "est_activation_bytes": est.activation_bytes,
        "est_logits_bytes": est.logits_bytes,
        "temp_ratio_est_to_xla": est.update_temp_bytes / m.temp_size_in_bytes,
    }


def per_device_rows(depth: int, device_counts: list[int], width: int, batch_size: int) -> list[dict]:
    import json
    import os
    import subprocess

    rows = []
    for d in device_counts:
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={d}", JAX_PLATFORMS="cpu")
        spec = json.dumps({"depth": depth, "devices": d, "width": width, "batch_size": batch_size})
        proc = subprocess.run([sys.executable, __file__, "--per-device-child", spec], capture_output=True, text=True, env=env)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            rows.append(
                {"kind": "per_device", "critic_depth": depth, "devices": d, "status": f"failed: {proc.stderr.strip().splitlines()[-1:]}"}
            )
            print(f"  per device, D={d}: failed", flush=True)
            continue
        row = json.loads(lines[-1][len("RESULT ") :])
        rows.append(row)
        print(
            f"  per device, depth {depth}, D={d} ({row['rows_per_device']} rows): XLA temp {row['xla_temp_bytes'] / MB:.1f} MB, "
            f"estimate {row['est_temp_bytes'] / MB:.1f} MB (x{row['temp_ratio_est_to_xla']:.2f})",
            flush=True,
        )
    return rows


def timed_updates(config: Config):
    """A function running one donated update on the current state, and the state holder."""
    env, agent = build_mod.build_task_and_agent(config)
    b = config.batch_size
    batch = replay.Batch(
        obs=jnp.zeros((b, env.state_size)),
        action=jnp.zeros((b, env.action_size)),
        goal=jnp.zeros((b, env.goal_size)),
        offset=jnp.ones((b,), jnp.int32),
    )
    update = jax.jit(agent.update, donate_argnums=0)
    holder = {"state": agent.init(jax.random.PRNGKey(0)), "key": jax.random.PRNGKey(1)}

    def step():
        holder["key"], sub = jax.random.split(holder["key"])
        holder["state"], metrics = update(holder["state"], batch, sub)
        return metrics["critic/loss"]

    return step


def main() -> None:
    parser = make_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=None, help="critic depths (default 4 16 64 256 1024; --quick: 4 64)")
    parser.add_argument(
        "--time-depths",
        type=int,
        nargs="*",
        default=None,
        help="critic depths timed with and without remat (default 16 64 256; --quick: 64)",
    )
    parser.add_argument("--actor-depth", type=int, default=4, help="actor depth (default 4: the memory is the critic's)")
    parser.add_argument("--width", type=int, default=None, help="both networks' width (default 256; --quick: 32)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 256; --quick: 32")
    parser.add_argument("--env", default="point_open")
    parser.add_argument("--repeats", type=int, default=None, help="timed updates per setting (default 5; --quick: 2)")
    parser.add_argument(
        "--devices", type=int, nargs="*", default=None, help="simulated device counts for the per-device rows (default 1 2 4; --quick: 2)"
    )
    parser.add_argument("--per-device-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.per_device_child is not None:
        import json

        spec = json.loads(args.per_device_child)
        print("RESULT " + json.dumps(per_device_child(spec["depth"], spec["devices"], spec["width"], spec["batch_size"])), flush=True)
        return
    started = time.time()
    header(NAME, args.quick)
    jax.config.update("jax_enable_compilation_cache", False)
    args.width = args.width or (32 if args.quick else 256)
    args.batch_size = args.batch_size or (32 if args.quick else 256)
    depths = args.depths or ([4, 64] if args.quick else [4, 16, 64, 256, 1024])
    time_depths = args.time_depths if args.time_depths is not None else ([64] if args.quick else [16, 64, 256])
    repeats = args.repeats or (2 if args.quick else 5)

    rows: list[dict] = []
    for depth in depths:
        for remat in (False, True):
            config = make_config(args, depth, remat)
            m = measure_memory(config)
            row = {"kind": "memory", "critic_depth": depth, "actor_depth": args.actor_depth, "remat": remat, **m}
            rows.append(row)
            print(
                f"  depth {depth:5d} remat {'on ' if remat else 'off'}: XLA temp {m['xla_temp_bytes'] / MB:9.1f} MB, "
                f"estimate {m['est_temp_bytes'] / MB:9.1f} MB (x{m['temp_ratio_est_to_xla']:.2f}), "
                f"peak {m['xla_peak_bytes'] / MB:9.1f} MB (compile {m['compile_s']:.1f} s)",
                flush=True,
            )

    device_counts = args.devices if args.devices is not None else ([2] if args.quick else [1, 2, 4])
    per_device = per_device_rows(64 if not args.quick else 8, device_counts, args.width, args.batch_size) if device_counts else []

    timing: list[dict] = []
    for depth in time_depths:
        steps = {remat: timed_updates(make_config(args, depth, remat)) for remat in (False, True)}
        for remat, step in steps.items():  # compile + warm up both before timing either
            jax.block_until_ready(step())
        times = {False: [], True: []}
        loads = [load_average()]
        for _ in range(repeats):  # interleaved, so a change of machine load hits both alike
            for remat, step in steps.items():
                t0 = time.perf_counter()
                jax.block_until_ready(step())
                times[remat].append(time.perf_counter() - t0)
        loads.append(load_average())
        for remat in (False, True):
            s = summarize(times[remat])
            timing.append(
                {
                    "kind": "time",
                    "critic_depth": depth,
                    "actor_depth": args.actor_depth,
                    "remat": remat,
                    "updates_per_s": 1.0 / s["median_s"],
                    "ms_per_update": 1000 * s["median_s"],
                    "timing": s,
                    "load_average_before_after": loads,
                }
            )
        slow = statistics.median(times[True]) / statistics.median(times[False])
        timing[-1]["remat_time_ratio"] = timing[-2]["remat_time_ratio"] = slow
        print(
            f"  depth {depth:5d}: {1 / statistics.median(times[False]):.2f} updates/s without remat, "
            f"{1 / statistics.median(times[True]):.2f} with (x{slow:.2f} time), load {loads}",
            flush=True,
        )

    print_table(
        f"Memory of one CRL update (width {args.width}, batch {args.batch_size}, actor depth {args.actor_depth}; MB = 1e6 bytes)",
        ["critic depth", "remat", "blocks/iter", "keeps", "XLA temp MB", "est temp MB", "est/XLA", "XLA peak MB", "est peak MB", "est/XLA"],
        [
            [
                r["critic_depth"],
                "on" if r["remat"] else "off",
                r["critic_blocks_per_iteration"],
                r["critic_keeps"],
                r["xla_temp_bytes"] / MB,
                r["est_temp_bytes"] / MB,
                r["temp_ratio_est_to_xla"],
                r["xla_peak_bytes"] / MB,
                r["est_peak_bytes"] / MB,
                r["peak_ratio_est_to_xla"],
            ]
            for r in rows
        ],
    )
    if per_device:
        print_table(
            f"Per device, data parallel over D simulated CPU devices (critic depth {per_device[0]['critic_depth']}, batch {args.batch_size})",
            ["D", "rows/device", "XLA temp MB", "est temp MB", "est/XLA"],
            [
                [
                    r["devices"],
                    r.get("rows_per_device"),
                    r["xla_temp_bytes"] / MB if "xla_temp_bytes" in r else None,
                    r["est_temp_bytes"] / MB if "est_temp_bytes" in r else None,
                    r.get("temp_ratio_est_to_xla"),
                ]
                for r in per_device
            ],
        )
    if timing:
        print_table(
            f"Time cost of remat (median of {repeats}, interleaved)",
            ["critic depth", "remat", "updates/s", "ms/update", "time x no-remat"],
            [
                [
                    r["critic_depth"],
                    "on" if r["remat"] else "off",
                    r["updates_per_s"],
                    r["ms_per_update"],
                    r["remat_time_ratio"] if r["remat"] else 1.0,
                ]
                for r in timing
            ],
        )
    ratios = [r["temp_ratio_est_to_xla"] for r in rows + per_device if "temp_ratio_est_to_xla" in r]
    summary = {"temp_ratio_min": min(ratios), "temp_ratio_max": max(ratios)}
    print(f"estimate / XLA temp: {summary['temp_ratio_min']:.2f} .. {summary['temp_ratio_max']:.2f}")
    settings = {
        "quick": args.quick,
        "depths": depths,
        "time_depths": time_depths,
        "actor_depth": args.actor_depth,
        "width": args.width,
        "batch_size": args.batch_size,
        "env": args.env,
        "repeats": repeats,
        "backward_saves": estimate.default_backward_saves(),
        "donated_state": True,
        "devices": device_counts,
    }
    write_results(output_path(NAME, args), NAME, settings, rows + per_device + timing, started, extra={"summary": summary})


if __name__ == "__main__":
    main()
