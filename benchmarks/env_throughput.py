"""Environment steps per second of every task (point mazes and the MuJoCo tasks), with automatic resets.

For each layout and each number of environments N, jits

    lax.scan over T steps of: random actions (uniform in [-1, 1]) for N environments, then
    vmap(step_autoreset) (envs/base.py), so episode ends are reset with a fresh start and goal

and reports N x T / seconds. The environments are built from the training defaults
(`build_task(Config(env=...))`: point mazes have 100-step episodes, so with T = 200 every
point environment is reset twice per call; MuJoCo tasks have 1,000-step episodes but the ant and the
humanoid fall (and reset) often under random actions). Drawing the random actions is part of the
timed program; the states are carried from call to call.

    python benchmarks/env_throughput.py            # point mazes, 256 and 4096 environments, T = 200
    python benchmarks/env_throughput.py --envs mujoco --num-envs 256 --steps 100 --repeats 3
                                                   # every MuJoCo task at 256 environments
    python benchmarks/env_throughput.py --envs ant ant_big_maze humanoid
    python benchmarks/env_throughput.py --quick    # smoke test: point mazes, 256 envs, T = 20, episodes of 10
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from _common import output_path, header, make_parser, print_table, time_call, write_results  # noqa: E402
from deepcrl.build import build_task  # noqa: E402
from deepcrl.config import Config  # noqa: E402
from deepcrl.envs import ENV_NAMES, MUJOCO_TASK_NAMES, POINT_ENV_NAMES, step_autoreset  # noqa: E402

NAME = "env_throughput"
GROUPS = {
    "point": tuple(n for n in POINT_ENV_NAMES if n != "point"),
    "mujoco": MUJOCO_TASK_NAMES,
    "all": tuple(n for n in ENV_NAMES if n != "point"),
}


def expand_envs(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        for env in GROUPS.get(name, (name,)):
            if env not in ENV_NAMES:
                raise SystemExit(f"env_throughput: unknown env {env!r}; allowed are {', '.join(ENV_NAMES)} or a group: {', '.join(GROUPS)}")
            if env not in out:
                out.append(env)
    return out


def build(env, num_envs: int, steps: int):
    """(initial states, key, jitted program stepping every environment `steps` times)."""

    def run(states, key):
        def one_step(carry, step_key):
            states, successes, resets = carry
            actions = jax.random.uniform(step_key, (num_envs, env.action_size), jnp.float32, -1.0, 1.0)
            nxt, stepped = jax.vmap(lambda s, a: step_autoreset(env, s, a))(states, actions)
            done = jnp.maximum(stepped.terminated, stepped.truncated)
            return (nxt, successes + jnp.sum(stepped.success), resets + jnp.sum(done)), None

        key, scan_key = jax.random.split(key)
        zero = jnp.zeros((), jnp.float32)
        (states, successes, resets), _ = jax.lax.scan(one_step, (states, zero, zero), jax.random.split(scan_key, steps))
        return states, key, successes, resets

    reset_key, key = jax.random.split(jax.random.PRNGKey(0))
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(reset_key, num_envs))
    return states, key, jax.jit(run, donate_argnums=0)


def main() -> None:
    parser = make_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, nargs="+", default=None, help="environment counts (default 256 4096; --quick: 256)")
    parser.add_argument("--steps", type=int, default=None, help="steps per environment per timed call (default 200; --quick: 20)")
    parser.add_argument(
        "--envs", nargs="+", default=["point"], help="tasks, or groups point / mujoco / all (default: point, every point maze)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed calls, median reported (default 7; --quick: 3)")
    args = parser.parse_args()
    started = time.time()
    header(NAME, args.quick)

    steps = args.steps or (20 if args.quick else 200)
    repeats = args.repeats or (3 if args.quick else 7)
    num_envs = args.num_envs or ([256] if args.quick else [256, 4096])
    # --quick shortens episodes so that its few steps still include automatic resets
    base = Config(progress=False, tensorboard=False)

    envs = expand_envs(args.envs)
    rows = []
    for env_name in envs:
        quick_episodes = {"episode_length": 10} if args.quick and env_name in POINT_ENV_NAMES else {"episode_length": None}
        env = build_task(dataclasses.replace(base, env=env_name, **quick_episodes))
        layout = getattr(env, "layout", None)
        for n in num_envs:
            states, key, program = build(env, n, steps)
            start = time.perf_counter()
            compiled = program.lower(states, key).compile()
            compile_s = time.perf_counter() - start
            holder = [states, key]
            counts = {}

            def call():
                holder[0], holder[1], successes, resets = compiled(holder[0], holder[1])
                counts["successes"], counts["resets"] = successes, resets
                return holder[0]

            timing = time_call(call, repeats=repeats, warmup=1)
            sps = n * steps / timing["median_s"]
            rows.append(
                {
                    "env": env.name,
                    "layout": None if layout is None else layout.name,
                    "maze_size": "-" if layout is None else f"{layout.height}x{layout.width}",
                    "device": jax.devices()[0].device_kind,
                    "num_envs": n,
                    "steps_per_call": steps,
                    "env_steps_per_s": sps,
                    "ns_per_env_step": 1e9 / sps,
                    "resets_per_call": float(counts["resets"]),
                    "success_fraction": float(counts["successes"]) / (n * steps),
                    "compile_s": compile_s,
                    "timing": timing,
                }
            )
            print(f"  {env.name:22s} N={n:5d}: {sps:12,.0f} steps/s  (compile {compile_s:.1f} s)", flush=True)

    print_table(
        f"Environment steps per second on {jax.devices()[0].device_kind} (random actions, step_autoreset, {steps} steps per call; median of {repeats})",
        ["env", "maze", "envs", "steps/s", "ns/step", "resets/call", "compile s"],
        [
            [r["env"], r["maze_size"], r["num_envs"], r["env_steps_per_s"], r["ns_per_env_step"], r["resets_per_call"], r["compile_s"]]
            for r in rows
        ],
    )
    settings = {
        "quick": args.quick,
        "envs": envs,
        "num_envs": num_envs,
        "steps_per_call": steps,
        "repeats": repeats,
        "config": base.to_dict(),
    }
    write_results(output_path(NAME, args), NAME, settings, rows, started)


if __name__ == "__main__":
    main()
