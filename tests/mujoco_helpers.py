"""One compiled program per MuJoCo physics model, shared by every test that needs it.

Compiling an MJX program costs 15-200 s on a small CPU, while running it costs milliseconds, so every
test of a task (tests/test_mujoco_tasks.py, test_humanoid.py, test_arm.py, test_reacher_pusher.py)
reads `probe(task)`: a single jitted function that resets a few environments and steps groups of them
STEPS times in one scan (automatic resets on), so that the program holds one copy of the MJX step:

- "random": NUM_ENVS fresh environments taking uniform random actions;
- "at_goal": copies of them whose goal is their achieved goal, and
- "far": copies whose goal is `far_offset(task)` away; both hold still (zero actions; the arm's servos
  hold their current angles);
- "lifted" (locomotion): copies with the torso above its healthy height, zero actions;
- "shoved" (humanoid_u_maze): copies pushed towards the start cell's walls (`SHOVES`), random actions.

The program is compiled without XLA's slower optimisations where that is faster (it runs once, for
milliseconds), and its results are cached for the test session; tests of one task share an xdist group, hence one worker.

Tasks that only re-arrange a probed task's model (`SHARES_PHYSICS_WITH`: the other mazes of a family, whose
walls are boxes like the u-maze's, and the arm's easy variants, whose model is the hard one's but for the
drawn region squares) are not compiled again: their MJX programs differ from their sibling's in constants
and wall counts only, and compiling each would cost another 50-120 s. Their models, start and goal
samplers and walls are checked without MJX (`sampled`, and plain MuJoCo in test_mujoco_tasks.py).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs import MUJOCO_TASK_NAMES, make_env
from deepcrl.envs.base import EnvState, step_autoreset
from deepcrl.envs.mujoco.base import import_mujoco

NUM_ENVS = 4
STEPS = 120  # 1.8 s of simulated humanoid time: long enough for a humanoid holding still to fall
SHOVES = np.array([[-4.0, 0.0], [0.0, -4.0], [0.0, 4.0], [-3.0, -3.0]], np.float32)  # m/s (x, y) added to the torso's velocity
# A program that runs once: skip XLA's expensive optimisation passes when compiling it. How far is per
# task, measured on a 2-core CPU (trace + compile + run of the probe): backend optimisation level 0 for
# the locomotion tasks and the reacher (ant_u_maze 40 s, against 51 s with XLA's defaults); level 1 for
# the arm, whose level-0 code takes 25-37 s to run its steps (arm_push_hard 67 s at level 1, 116 s at
# level 0; arm_reach 47 s against 61 s); XLA's defaults for the pusher (at level 0 its program compiles
# for more than 6 minutes, against about 65 s).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
FAST_COMPILE_OPTIMISED_CODE = {"xla_backend_optimization_level": 1, "xla_llvm_disable_expensive_passes": True}


def compile_options(name: str) -> dict | None:
    if name == "pusher":
        return None
    return FAST_COMPILE_OPTIMISED_CODE if name.startswith("arm_") else FAST_COMPILE


# task -> the probed task whose physics it shares (same task class and MJCF but for the lines named in
# test_mujoco_tasks.py::test_variants_differ_from_their_probed_task_only_in_walls_or_regions)
SHARES_PHYSICS_WITH = {
    **{f"ant_{m}": "ant_u_maze" for m in ("u4_maze", "u5_maze", "big_maze", "hardest_maze")},
    **{f"humanoid_{m}": "humanoid_u_maze" for m in ("big_maze", "hardest_maze")},
    "arm_push_easy": "arm_push_hard",
    "arm_binpick_easy": "arm_binpick_hard",
}
PROBED = tuple(n for n in MUJOCO_TASK_NAMES if n not in SHARES_PHYSICS_WITH)  # one MJX program each


@functools.lru_cache(maxsize=None)
def task(name: str):
    return make_env(name)


@functools.lru_cache(maxsize=None)
def sampled(name: str, n: int = 256) -> dict:
    """The task's own start and goal samplers (no physics): `start_qpos` [n, nq], `reset_goal` and
    `eval_goal` [n, goal_size], from independent keys."""
    env = task(name)

    def draw(key):
        k_start, k_goal, k_eval = jax.random.split(key, 3)
        return dict(start_qpos=env._start(k_start)[0], reset_goal=env._train_goal(k_goal), eval_goal=env._eval_goal(k_eval))

    return jax.tree_util.tree_map(np.asarray, jax.jit(jax.vmap(draw))(jax.random.split(jax.random.PRNGKey(3), n)))


def far_offset(env) -> np.ndarray:
    """Where the "far" group's goal lies from its achieved goal: 2 m ahead for the humanoid, 0.5 m for the
    arm (the distances its own tests name), ten success radii along every goal axis elsewhere."""
    family = env.name.split("_")[0]
    if family in ("humanoid", "arm"):
        return np.eye(env.goal_size, dtype=np.float32)[0] * (2.0 if family == "humanoid" else 0.5)
    return np.full(env.goal_size, 10 * env.goal_threshold, np.float32)


def hold_action(env, obs):
    """The arm's action whose servo targets are the current angles of its four controlled joints, gripper open."""
    q = obs[..., jnp.array([3, 4, 6, 8])]  # joints 1, 2, 4, 6 in the 7 joint-angle entries
    arm_action = (q - env._ctrl_mid[:4]) / env._ctrl_half[:4]
    return jnp.concatenate([arm_action, -jnp.ones(q.shape[:-1] + (1,))], axis=-1)


def group_names(env) -> list[str]:
    """The probe's groups of a task, in the order the program stacks them."""
    names = ["random", "at_goal", "far"]
    if hasattr(env, "healthy_z"):
        names.append("lifted")
    if env.name == "humanoid_u_maze":
        names.append("shoved")
    return names


def _groups(env, states):
    """[(name, edited copy of `states`, how it acts: "random" | "still")] for every group of the task."""
    achieved = jax.vmap(env.achieved_goal)(states.obs)
    edits = {
        "random": lambda: (states, "random"),
        "at_goal": lambda: (states.replace(goal=achieved), "still"),
        "far": lambda: (states.replace(goal=achieved + jnp.asarray(far_offset(env))), "still"),
        "lifted": lambda: (
            states.replace(physics=states.physics.replace(qpos=states.physics.qpos.at[:, 2].set(env.healthy_z[1] + 1.0))),
            "still",
        ),
        "shoved": lambda: (
            states.replace(physics=states.physics.replace(qvel=states.physics.qvel.at[:, :2].add(jnp.asarray(SHOVES)))),
            "random",
        ),
    }
    return [(name, *edits[name]()) for name in group_names(env)]


def _about_to_truncate(env, keys):
    """Placeholder states whose next step ends the episode (`step` = episode_length - 1), so that
    `step_autoreset` replaces them with fresh resets drawn from `keys`: the probe's first scan
    iteration resets every environment with the same copy of `reset` that the automatic resets use."""
    _, mjx = import_mujoco()
    n = keys.shape[0]
    zeros = lambda size: jnp.zeros((n, size), jnp.float32)  # noqa: E731
    scalar = jnp.zeros((n,), jnp.float32)
    return EnvState(
        physics=jax.vmap(lambda _: mjx.make_data(env.mjx_model))(keys),
        obs=zeros(env.state_size),
        goal=zeros(env.goal_size),
        distance=scalar,
        success=scalar,
        terminated=scalar,
        truncated=scalar,
        step=jnp.full((n,), env.episode_length - 1, jnp.int32),
        key=keys,
    )


@functools.lru_cache(maxsize=None)
def probe(name: str) -> dict:
    """{group: {obs, goal, distance, success, terminated, truncated: [STEPS, NUM_ENVS, ...]}} for every group,
    plus the random group's arrays at the top level, its reset states (`reset_obs`, `reset_goal`, `states`),
    evaluation goals (`eval_goal`, from the task's evaluation goal sampler), the first step's success of
    the at-goal and far groups, and for locomotion the fall checks (`high_terminated`: lifted torsos end
    the episode at once; `low_failed`: a torso below its healthy height counts as a fall, checked on the
    state itself).

    The program holds one copy of the MJX step and one of the reset (an MJX forward pass): iteration 0
    of the scan steps placeholder states into automatic resets (`_about_to_truncate`), iteration 1 turns
    the random group's fresh states into every group, and iterations 1..STEPS are the steps reported."""
    env = task(name)
    arm = env.name.startswith("arm_")
    n = len(group_names(env)) * NUM_ENVS

    def run(key):
        k_reset, k_steps, k_eval = jax.random.split(key, 3)
        placeholders = _about_to_truncate(env, jax.random.split(k_reset, n))

        def one_step(carry, xs):
            s, initial = carry
            i, k = xs
            fresh = jax.tree_util.tree_map(lambda x: x[:NUM_ENVS], s)  # the random group's reset states, at i = 1
            groups = _groups(env, fresh)
            grouped = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *[g for _, g, _ in groups])
            s = jax.tree_util.tree_map(lambda a, b: jnp.where(i == 1, a, b), grouped, s)
            initial = jax.tree_util.tree_map(lambda a, b: jnp.where(i == 1, a, b), fresh, initial)
            moving = jnp.repeat(jnp.array([how == "random" for _, _, how in groups]), NUM_ENVS)[:, None]
            random = jax.random.uniform(k, (n, env.action_size), jnp.float32, -1.0, 1.0)
            still = hold_action(env, s.obs) if arm else jnp.zeros_like(random)
            s, stepped = jax.vmap(lambda s, a: step_autoreset(env, s, a))(s, jnp.where(moving, random, still))
            return (s, initial), dict(
                obs=stepped.obs,
                goal=stepped.goal,
                distance=stepped.distance,
                success=stepped.success,
                terminated=stepped.terminated,
                truncated=stepped.truncated,
            )

        initial = jax.tree_util.tree_map(lambda x: x[:NUM_ENVS], placeholders)
        xs = (jnp.arange(STEPS + 1), jax.random.split(k_steps, STEPS + 1))
        (_, states), steps = jax.lax.scan(one_step, (placeholders, initial), xs)
        steps = {k: v[1:] for k, v in steps.items()}  # iteration 0 stepped the placeholders
        names = group_names(env)
        out = {g: {k: v[:, j * NUM_ENVS : (j + 1) * NUM_ENVS] for k, v in steps.items()} for j, g in enumerate(names)}
        out.update(out["random"])
        out.update(
            reset_obs=states.obs,
            reset_goal=states.goal,
            eval_goal=jax.vmap(env._eval_goal)(jax.random.split(k_eval, NUM_ENVS)),
            at_goal_success=out["at_goal"]["success"][0],
            at_goal_distance=out["at_goal"]["distance"][0],
            far_success=out["far"]["success"][0],
        )
        if "lifted" in out:
            out["high_terminated"] = out["lifted"]["terminated"][0]
            low = states.physics.replace(qpos=states.physics.qpos.at[:, 2].set(env.healthy_z[0] / 2))
            out["low_failed"] = jax.vmap(env._failed)(low, states.obs)
        return out, states

    out, states = jax.jit(run, compiler_options=compile_options(name))(jax.random.PRNGKey(0))
    result = jax.tree_util.tree_map(np.asarray, out)
    result["states"] = states
    return result
