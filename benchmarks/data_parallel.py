"""Data-parallel scaling: 2 simulated CPU devices against 1 for the same global batch.

JAX fixes the device count when it starts, so this script puts
`--xla_force_host_platform_device_count=2` into XLA_FLAGS before it imports jax (the 1-device
programs run on the first of the two devices, in the same process, so that they can be timed
interleaved with the 2-device ones). For each network size and each workload it builds
`Trainer(Config(num_devices=D, ...))` for D = 1 and 2 with the same `num_envs` and global
`batch_size` (D = 2: each device steps num_envs / 2 environments, keeps their buffer columns and
samples batch_size / 2 rows; parameters are replicated, the InfoNCE negatives are all-gathered and
the gradients summed over devices), compiles `trainer.epoch` ahead of time (compile time reported),
runs warm-up epochs and then times the two programs interleaved (one sample of each in turn,
`--repeats` rounds, median; the 1-minute load average is recorded with every sample).

Workloads (same sizes for D = 1 and 2):
  epoch    Config() defaults: 256 envs x 25 steps and 40 SGD updates per epoch (seconds per epoch)
  sgd      256 envs x 1 step and `--sgd-updates` (default 100) updates per epoch: SGD updates/s
  collect  256 envs x 200 steps and 1 update per epoch: environment steps/s

    efficiency = seconds per epoch on 1 device / seconds per epoch on 2 devices

1.0 means splitting costs nothing, < 1 is overhead, > 1 a speedup. On a CPU the two "devices" are
simulated and share the same cores. XLA's CPU client already runs the large matmuls of a 1-device
program on several threads, so for SGD-heavy work the split mostly adds overhead (matmuls half as
tall, the collectives, two programs competing for the same cores); but much of a 1-device program
(environment stepping, small fusions) runs on one thread, and two devices run two such programs at
once, so collection can come out faster. This is no measure of scaling over real accelerators.

The collectives' share: a shard_map microbenchmark that does, per "update", what the 2-device
update communicates: all-gather of the [batch/2, repr_dim] goal representations and its transpose
(reduce-scatter of the cotangent) and an all-reduce (psum) of a tree the size of the actor and
critic parameters (the gradients). Its milliseconds per update are compared with the 2-device
program's milliseconds per update in the `sgd` workload.

    python benchmarks/data_parallel.py            # depth 8 width 64 and depth 16 width 256, batch 256
    python benchmarks/data_parallel.py --quick    # smoke test: tiny sizes, the epoch workload only
"""

from __future__ import annotations

import os
import sys

FLAG = "--xla_force_host_platform_device_count"
if "jax" in sys.modules:
    raise RuntimeError("benchmarks/data_parallel.py must set XLA_FLAGS before jax is imported")
_flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(FLAG)]
os.environ["XLA_FLAGS"] = " ".join([*_flags, f"{FLAG}=2"])

import dataclasses  # noqa: E402
import importlib  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from _common import EpochProgram, header, load_average, make_parser, output_path, print_table, summarize, time_call, write_results  # noqa: E402
from deepcrl import parallel  # noqa: E402
from deepcrl.config import Config  # noqa: E402

# deepcrl/__init__.py exports a function called `train`, which shadows the module attribute.
train_mod = importlib.import_module("deepcrl.programs")
net_mod = importlib.import_module("deepcrl.networks")
build_mod = importlib.import_module("deepcrl.build")

NAME = "data_parallel"

SIZES = {
    "d8w64": dict(depth=8, width=64, batch_size=256),
    "d16w256": dict(depth=16, width=256, batch_size=256),
    "tiny": dict(depth=4, width=32, batch_size=32, num_envs=32, buffer_size=200, prefill_steps=10),  # --quick only
}


def workloads(quick: bool, sgd_updates: int) -> dict[str, dict]:
    if quick:
        return {
            "epoch": dict(unroll_length=5, updates_per_epoch=4),
            "sgd": dict(unroll_length=1, updates_per_epoch=20),
            "collect": dict(unroll_length=50, updates_per_epoch=1),
        }
    return {
        "epoch": dict(unroll_length=25, updates_per_epoch=40),
        "sgd": dict(unroll_length=1, updates_per_epoch=sgd_updates),
        "collect": dict(unroll_length=200, updates_per_epoch=1),
    }


def collectives_ms_per_update(config: Config, k: int, repeats: int) -> dict:
    """Milliseconds per update of the 2-device update's collectives alone (all-gather + reduce-scatter of
    [batch/2, repr_dim], psum of a parameter-sized tree), K of them in a scan inside shard_map."""
    trainer = train_mod.Trainer(dataclasses.replace(config, num_devices=1))
    agent_state = jax.jit(trainer.agent.init)(jax.random.PRNGKey(0))
    params = {"actor": agent_state.actor_params, "critic": agent_state.critic_params}
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
    mesh = parallel.make_mesh(2)
    ax = parallel.DATA_AXIS
    local = config.batch_size // 2
    # one copy per device (leading axis split over the mesh), so every device holds its own values
    reps = jax.random.normal(jax.random.PRNGKey(1), (config.batch_size, config.repr_dim), jnp.float32)
    params2 = jax.tree_util.tree_map(lambda p: jnp.stack([p, p]), params)

    def per_device(x, p):
        p = jax.tree_util.tree_map(lambda a: a[0], p)

        def body(carry, _):
            x, p = carry
            g = jax.lax.all_gather(x, ax, tiled=True)  # forward: the global batch's psi
            x = x + 1e-6 * jax.lax.psum_scatter(g, ax, tiled=True)  # backward: its cotangent, reduce-scattered
            p = jax.tree_util.tree_map(lambda a: 0.5 * jax.lax.psum(a, ax), p)  # gradients summed over devices
            return (x, p), None

        (x, p), _ = jax.lax.scan(body, (x, p), None, length=k)
        return x, jax.tree_util.tree_map(lambda a: a[None], p)

    fn = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(ax), P(ax)), out_specs=(P(ax), P(ax)), check_vma=False))
    reps = jax.device_put(reps, jax.sharding.NamedSharding(mesh, P(ax)))
    params2 = jax.device_put(params2, jax.sharding.NamedSharding(mesh, P(ax)))
    timing = time_call(lambda: fn(reps, params2), repeats=repeats, warmup=1)
    assert reps.shape[0] // 2 == local
    return {
        "updates_per_call": k,
        "ms_per_update": 1000.0 * timing["median_s"] / k,
        "gathered_rows": config.batch_size,
        "repr_dim": config.repr_dim,
        "psum_parameters": n_params,
        "timing": timing,
        "load_average_1_5_15": load_average(),
    }


def main() -> None:
    parser = make_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", nargs="+", choices=sorted(SIZES), default=None, help="network sizes (default: d8w64 d16w256; --quick: tiny)"
    )
    parser.add_argument(
        "--workloads", nargs="+", choices=["epoch", "sgd", "collect"], default=None, help="default: all three (--quick: epoch)"
    )
    parser.add_argument("--sgd-updates", type=int, default=100, help="updates per epoch of the sgd workload (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5; --quick: 3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed epochs per program before timing (default %(default)s)")
    parser.add_argument("--no-collectives", action="store_true", help="skip the collectives microbenchmark")
    args = parser.parse_args()
    started = time.time()
    header(NAME, args.quick)
    if jax.device_count() < 2:
        raise SystemExit(f"JAX sees {jax.device_count()} device(s); XLA_FLAGS={os.environ.get('XLA_FLAGS')!r} did not take effect")

    quick = args.quick
    sizes = args.sizes or (["tiny"] if quick else ["d8w64", "d16w256"])
    all_work = workloads(quick, args.sgd_updates)
    names = args.workloads or (["epoch"] if quick else list(all_work))
    repeats = args.repeats or (3 if quick else 5)
    base = Config(progress=False, tensorboard=False)
    print(f"  {jax.device_count()} simulated {jax.default_backend()} devices sharing {os.cpu_count()} CPU cores", flush=True)

    rows: list[dict] = []
    collectives: dict[str, dict] = {}
    for size in sizes:
        for work in names:
            config = dataclasses.replace(base, **SIZES[size], **all_work[work])
            progs = {}
            for d in (1, 2):
                progs[d] = EpochProgram(dataclasses.replace(config, num_devices=d))
                print(f"  {size} {work} D={d}: compile {progs[d].epoch_compile_s:.1f} s", flush=True)
            for p in progs.values():
                p.run(args.warmup)
            for _ in range(repeats):
                for p in progs.values():
                    p.sample(1)
            t1 = statistics.median(progs[1].times)
            for d, p in progs.items():
                t = statistics.median(p.times)
                per_round = [a / b for a, b in zip(progs[1].times, p.times)]
                timing = summarize(p.times)
                timing["load_average_1_5_15"] = p.loads
                c = p.config
                rows.append(
                    {
                        "size": size,
                        "workload": work,
                        "num_devices": d,
                        "depth": c.depth,
                        "width": c.width,
                        "num_envs": c.num_envs,
                        "unroll_length": c.unroll_length,
                        "updates_per_epoch": c.updates_per_epoch,
                        "batch_size": c.batch_size,
                        "per_device_envs": c.num_envs // d,
                        "per_device_batch": c.batch_size // d,
                        "seconds_per_epoch": t,
                        "updates_per_s": c.updates_per_epoch / t,
                        "env_steps_per_s": c.env_steps_per_epoch / t,
                        "efficiency": t1 / t,
                        "efficiency_median_per_round": statistics.median(per_round),
                        "efficiency_per_round": per_round,
                        "compile_s": p.epoch_compile_s,
                        "load_median_1min": statistics.median(load[0] for load in p.loads if load),
                        "timing": timing,
                    }
                )
                print(f"  {size} {work} D={d}: {t:.3f} s/epoch, efficiency {t1 / t:.2f}", flush=True)
            del progs
        if not args.no_collectives:
            config = dataclasses.replace(base, **SIZES[size], **all_work["sgd"])
            coll = collectives_ms_per_update(config, config.updates_per_epoch, repeats)
            sgd2 = [r for r in rows if r["size"] == size and r["workload"] == "sgd" and r["num_devices"] == 2]
            if sgd2:
                ms2 = 1000.0 / sgd2[0]["updates_per_s"]
                coll["sgd_2_device_ms_per_update"] = ms2
                coll["share_of_2_device_update"] = coll["ms_per_update"] / ms2
            collectives[size] = coll
            print(f"  {size}: collectives {coll['ms_per_update']:.3f} ms per update", flush=True)

    print_table(
        f"1 vs 2 simulated CPU devices, same num_envs and global batch (median of {repeats} interleaved epochs)",
        [
            "size",
            "workload",
            "D",
            "envs x steps",
            "updates x batch",
            "per device envs/batch",
            "s/epoch",
            "updates/s",
            "env steps/s",
            "efficiency",
            "eff. (per round)",
            "compile s",
            "load (1 min)",
        ],
        [
            [
                r["size"],
                r["workload"],
                r["num_devices"],
                f"{r['num_envs']}x{r['unroll_length']}",
                f"{r['updates_per_epoch']}x{r['batch_size']}",
                f"{r['per_device_envs']}/{r['per_device_batch']}",
                r["seconds_per_epoch"],
                r["updates_per_s"],
                r["env_steps_per_s"],
                r["efficiency"],
                r["efficiency_median_per_round"],
                r["compile_s"],
                r["load_median_1min"],
            ]
            for r in rows
        ],
    )
    if collectives:
        print_table(
            "Collectives alone (all-gather + reduce-scatter of batch x repr_dim, psum of the parameters), per update",
            ["size", "gathered rows x repr", "params summed", "ms/update", "2-device sgd ms/update", "share"],
            [
                [
                    s,
                    f"{c['gathered_rows']}x{c['repr_dim']}",
                    c["psum_parameters"],
                    c["ms_per_update"],
                    c.get("sgd_2_device_ms_per_update"),
                    c.get("share_of_2_device_update"),
                ]
                for s, c in collectives.items()
            ],
        )
    print(
        f"efficiency = s/epoch on 1 device / s/epoch on 2 devices (1.0: no overhead, < 1: overhead, > 1: speedup). "
        f"Both devices are simulated on the same {os.cpu_count()} CPU cores, which a 1-device program already uses for its "
        f"matmuls: a speedup here can only come from work that one device runs on a single thread (environment "
        f"stepping, small fusions); it says nothing about scaling over real accelerators."
    )

    settings = {
        "quick": quick,
        "sizes": {s: SIZES[s] for s in sizes},
        "workloads": {w: all_work[w] for w in names},
        "repeats": repeats,
        "warmup_epochs": args.warmup,
        "device_count": jax.device_count(),
        "config": base.to_dict(),
    }
    write_results(output_path(NAME, args), NAME, settings, rows, started, extra={"collectives": collectives})


if __name__ == "__main__":
    main()
