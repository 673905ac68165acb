"""CRL update time and peak device memory of deep critics, with and without remat (one prepared run for a GPU).

Configurations: critic depth 4, 64, 256, 1024 (phi and psi), actor depth 4, width 256, batch 512,
humanoid-sized inputs (state 268, action 17, goal 3), remat off and on, the scan layout a run would use
(networks.resolve_unroll: unrolled up to depth 16, one block per scan iteration beyond). Each
configuration runs in its own subprocess, so the device's peak memory belongs to it alone:

    child: build CRL, init the state on the device, jit(update, donate the state), compile (timed),
           2 warm-up updates, then timed updates (median of up to --repeats, at most --time-per-config s),
           peak = jax.devices()[0].memory_stats()["peak_bytes_in_use"] where the backend has it
           (GPU/TPU), else XLA's memory_analysis (arguments + temp) of the compiled update.

Next to each: deepcrl.estimate's analytic peak (parameters + Adam + batch + gradients + activations).
The parent stops starting configurations once --budget seconds (default 450: under 10 minutes in
all) have passed, and records the rest as skipped; a child that runs past its own limit is killed and
recorded as timed out.

    python benchmarks/gpu_deep.py                 # the GPU run; JSON to $OUT/gpu_deep.json if $OUT is set,
                                                  # else benchmarks/results/gpu_deep.json
    python benchmarks/gpu_deep.py --quick         # CPU smoke test: width 32, batch 32, depth 4 and 64
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

NAME = "gpu_deep"
HUMANOID = {"state_size": 268, "action_size": 17, "goal_size": 3}


# ----------------------------------------------------------------------------------------------
# one configuration (runs in a child process)
# ----------------------------------------------------------------------------------------------


def run_one(spec: dict) -> dict:
    import types

    import jax
    import jax.numpy as jnp

    from deepcrl import estimate, replay
    from deepcrl.agents.crl import CRL, CRLConfig
    from deepcrl.networks import resolve_unroll

    t_start = time.perf_counter()
    cd, ad, w, b = spec["critic_depth"], spec["actor_depth"], spec["width"], spec["batch_size"]
    cfg = CRLConfig(
        **HUMANOID,
        critic_depth=cd,
        actor_depth=ad,
        critic_width=w,
        actor_width=w,
        critic_unroll=resolve_unroll(0, cd),
        actor_unroll=resolve_unroll(0, ad),
        remat=spec["remat"],
    )
    agent = CRL(cfg)
    key = jax.random.PRNGKey(0)
    state = jax.jit(agent.init)(key)
    batch_key = jax.random.PRNGKey(1)
    k1, k2, k3 = jax.random.split(batch_key, 3)
    batch = replay.Batch(
        obs=jax.random.normal(k1, (b, cfg.state_size)),
        action=jnp.tanh(jax.random.normal(k2, (b, cfg.action_size))),
        goal=jax.random.normal(k3, (b, cfg.goal_size)),
        offset=jnp.ones((b,), jnp.int32),
    )
    update = jax.jit(agent.update, donate_argnums=0)
    t0 = time.perf_counter()
    compiled = update.lower(state, batch, key).compile()
    compile_s = time.perf_counter() - t0
    ma = compiled.memory_analysis()
    xla = {
        "temp": int(ma.temp_size_in_bytes),
        "argument": int(ma.argument_size_in_bytes),
        "output": int(ma.output_size_in_bytes),
        "alias": int(ma.alias_size_in_bytes),
    }

    keys = iter(jax.random.split(jax.random.PRNGKey(2), 2 + spec["repeats"]))
    for _ in range(2):  # warm-up
        state, metrics = compiled(state, batch, next(keys))
        jax.block_until_ready(metrics)
    times = []
    deadline = time.perf_counter() + spec["time_per_config"]
    for _ in range(spec["repeats"]):
        t = time.perf_counter()
        state, metrics = compiled(state, batch, next(keys))
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t)
        if time.perf_counter() > deadline:
            break
    loss = float(metrics["critic/loss"])

    device = jax.devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:
        stats = None
    if stats and "peak_bytes_in_use" in stats:
        peak, source = int(stats["peak_bytes_in_use"]), "memory_stats.peak_bytes_in_use"
    else:
        peak, source = xla["argument"] + xla["temp"], "xla.memory_analysis (argument + temp)"

    est_cfg = types.SimpleNamespace(**{f: getattr(cfg, f) for f in cfg.__dataclass_fields__}, batch_size=b)
    est = estimate.estimate_memory(est_cfg, cfg.state_size, cfg.goal_size, cfg.action_size, num_devices=1)
    batch_bytes = b * 4 * (cfg.state_size + cfg.action_size + cfg.goal_size)
    est_peak = est.state_bytes + batch_bytes + est.update_temp_bytes
    med = statistics.median(times)
    return {
        **spec,
        "status": "ok",
        "critic_blocks_per_iteration": cfg.critic_unroll,
        "device": f"{device.platform}:{device.device_kind}",
        "compile_s": compile_s,
        "ms_per_update": 1000 * med,
        "updates_per_s": 1.0 / med,
        "times_s": [round(t, 6) for t in times],
        "peak_bytes": peak,
        "peak_source": source,
        "bytes_in_use_after": int(stats["bytes_in_use"]) if stats and "bytes_in_use" in stats else None,
        "xla": xla,
        "est_peak_bytes": est_peak,
        "est_temp_bytes": est.update_temp_bytes,
        "est_state_bytes": est.state_bytes,
        "est_peak_ratio": est_peak / peak,
        "est_temp_ratio_to_xla": est.update_temp_bytes / xla["temp"] if xla["temp"] else None,
        "critic_loss_after": loss,
        "child_wall_s": time.perf_counter() - t_start,
    }


# ----------------------------------------------------------------------------------------------
# the parent: one subprocess per configuration, a time budget over all
# ----------------------------------------------------------------------------------------------


def main() -> None:
    if "--child" not in sys.argv:
        # The parent must not hold the accelerator while its children measure: no preallocation, and no
        # backend started before the children are done (machine_info is read at the end).
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import _common
    from _common import load_average, make_parser, print_table, write_results

    parser = make_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--child", default=None, help=argparse_hidden())
    parser.add_argument("--depths", type=int, nargs="+", default=None, help="critic depths (default 4 64 256 1024; --quick: 4 64)")
    parser.add_argument("--actor-depth", type=int, default=4)
    parser.add_argument("--width", type=int, default=None, help="default 256; --quick: 32")
    parser.add_argument("--batch-size", type=int, default=None, help="default 512; --quick: 32")
    parser.add_argument("--repeats", type=int, default=None, help="timed updates per configuration at most (default 20; --quick: 3)")
    parser.add_argument(
        "--time-per-config", type=float, default=None, help="seconds of timed updates per configuration at most (default 20)"
    )
    parser.add_argument("--config-timeout", type=float, default=None, help="a child running longer is killed (default 150 s; --quick: 120)")
    parser.add_argument(
        "--budget", type=float, default=None, help="no configuration starts after this many seconds (default 450; --quick: 300)"
    )
    args = parser.parse_args()

    if args.child is not None:
        print("RESULT " + json.dumps(run_one(json.loads(args.child))), flush=True)
        return

    started = time.time()
    _common._LOAD_AT_START = load_average()
    print(
        f"{NAME}: one subprocess per configuration; load {_common._LOAD_AT_START}{'  [--quick: smoke-test sizes]' if args.quick else ''}",
        flush=True,
    )
    q = args.quick
    depths = args.depths or ([4, 64] if q else [4, 64, 256, 1024])
    width = args.width or (32 if q else 256)
    batch = args.batch_size or (32 if q else 512)
    repeats = args.repeats or (3 if q else 20)
    time_per_config = args.time_per_config or 20.0
    config_timeout = args.config_timeout or (120.0 if q else 150.0)
    budget = args.budget or (300.0 if q else 450.0)

    rows = []
    t_begin = time.perf_counter()
    for depth in depths:
        for remat in (False, True):
            spec = {
                "critic_depth": depth,
                "actor_depth": args.actor_depth,
                "width": width,
                "batch_size": batch,
                "remat": remat,
                "repeats": repeats,
                "time_per_config": time_per_config,
            }
            elapsed = time.perf_counter() - t_begin
            if elapsed > budget:
                rows.append({**spec, "status": f"skipped: budget of {budget:g} s used ({elapsed:.0f} s)"})
                print(f"  depth {depth:5d} remat {'on ' if remat else 'off'}: skipped (budget)", flush=True)
                continue
            timeout = min(config_timeout, max(30.0, budget + 60.0 - elapsed))
            t = time.perf_counter()
            try:
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, timeout=timeout
                )
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
                    f"  depth {depth:5d} remat {'on ' if remat else 'off'}: {row['ms_per_update']:.2f} ms/update, "
                    f"peak {row['peak_bytes'] / 1e9:.3f} GB (estimate {row['est_peak_bytes'] / 1e9:.3f}), "
                    f"compile {row['compile_s']:.1f} s, wall {row['wall_s']:.0f} s",
                    flush=True,
                )
            else:
                print(f"  depth {depth:5d} remat {'on ' if remat else 'off'}: {row['status']}", flush=True)

    ok = [r for r in rows if r.get("status") == "ok"]
    print_table(
        f"CRL update, humanoid-sized inputs, actor depth {args.actor_depth}, width {width}, batch {batch}"
        f"{' (' + ok[0]['device'] + ')' if ok else ''}",
        ["critic depth", "remat", "ms/update", "updates/s", "peak GB", "est peak GB", "est/peak", "compile s", "status"],
        [
            [
                r["critic_depth"],
                "on" if r["remat"] else "off",
                r.get("ms_per_update"),
                r.get("updates_per_s"),
                r["peak_bytes"] / 1e9 if "peak_bytes" in r else None,
                r["est_peak_bytes"] / 1e9 if "est_peak_bytes" in r else None,
                r.get("est_peak_ratio"),
                r.get("compile_s"),
                r["status"][:40],
            ]
            for r in rows
        ],
    )
    out = args.out
    if out is None and os.environ.get("OUT"):
        out = Path(os.environ["OUT"]) / (f"{NAME}.quick.json" if q else f"{NAME}.json")
    if out is None:
        from _common import output_path

        out = output_path(NAME, args)
    settings = {
        "quick": q,
        "depths": depths,
        "actor_depth": args.actor_depth,
        "width": width,
        "batch_size": batch,
        **HUMANOID,
        "repeats": repeats,
        "time_per_config": time_per_config,
        "config_timeout": config_timeout,
        "budget": budget,
        "layout": "networks.resolve_unroll(0, depth)",
        "donated_state": True,
    }
    write_results(out, NAME, settings, rows, started)


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
