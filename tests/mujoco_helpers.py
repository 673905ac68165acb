"""One compiled program per MuJoCo task, shared by every test that needs it.

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

The program is compiled without XLA's slower optimisations (it runs once, for milliseconds), and its
results are cached for the test session; tests of one task share an xdist group, hence one worker.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs import make_env
from deepcrl.envs.base import step_autoreset

NUM_ENVS = 4
STEPS = 120  # 1.8 s of simulated humanoid time: long enough for a humanoid holding still to fall
SHOVES = np.array([[-4.0, 0.0], [0.0, -4.0], [0.0, 4.0], [-3.0, -3.0]], np.float32)  # m/s (x, y) added to the torso's velocity
# A program that runs once: skip XLA's expensive optimisation passes when compiling it (a third less compile time).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@functools.lru_cache(maxsize=None)
def task(name: str):
    return make_env(name)


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


def _groups(env, states):
    """[(name, edited states, how they act: "random" | "still")] in the order the program stacks them."""
    achieved = jax.vmap(env.achieved_goal)(states.obs)
    groups = [
        ("random", states, "random"),
        ("at_goal", states.replace(goal=achieved), "still"),
        ("far", states.replace(goal=achieved + jnp.asarray(far_offset(env))), "still"),
    ]
    if hasattr(env, "healthy_z"):
        lifted = states.physics.replace(qpos=states.physics.qpos.at[:, 2].set(env.healthy_z[1] + 1.0))
        groups.append(("lifted", states.replace(physics=lifted), "still"))
    if env.name == "humanoid_u_maze":
        shoved = states.physics.replace(qvel=states.physics.qvel.at[:, :2].add(jnp.asarray(SHOVES)))
        groups.append(("shoved", states.replace(physics=shoved), "random"))
    return groups


@functools.lru_cache(maxsize=None)
def probe(name: str) -> dict:
    """{group: {obs, goal, distance, success, terminated, truncated: [STEPS, NUM_ENVS, ...]}} for every group,
    plus the random group's arrays at the top level, its reset states (`reset_obs`, `reset_goal`, `states`),
    evaluation-reset goals (`eval_goal`), the first step's success of the at-goal and far groups, and for
    locomotion the fall checks (`high_terminated`: lifted torsos end the episode at once; `low_failed`: a
    torso below its healthy height counts as a fall, checked on the state itself)."""
    env = task(name)
    arm = env.name.startswith("arm_")

    def run(key):
        k_reset, k_steps = jax.random.split(key)
        states = jax.vmap(env.reset)(jax.random.split(k_reset, NUM_ENVS))
        groups = _groups(env, states)
        everything = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *[s for _, s, _ in groups])
        n = len(groups) * NUM_ENVS
        moving = jnp.repeat(jnp.array([how == "random" for _, _, how in groups]), NUM_ENVS)[:, None]

        def one_step(s, k):
            random = jax.random.uniform(k, (n, env.action_size), jnp.float32, -1.0, 1.0)
            still = hold_action(env, s.obs[:, : env.state_size]) if arm else jnp.zeros_like(random)
            s, stepped = jax.vmap(lambda s, a: step_autoreset(env, s, a))(s, jnp.where(moving, random, still))
            return s, dict(
                obs=stepped.obs,
                goal=stepped.goal,
                distance=stepped.distance,
                success=stepped.success,
                terminated=stepped.terminated,
                truncated=stepped.truncated,
            )

        _, steps = jax.lax.scan(one_step, everything, jax.random.split(k_steps, STEPS))
        out = {g: {k: v[:, i * NUM_ENVS : (i + 1) * NUM_ENVS] for k, v in steps.items()} for i, (g, _, _) in enumerate(groups)}
        out.update(out["random"])
        out.update(
            reset_obs=states.obs,
            reset_goal=states.goal,
            eval_goal=jax.vmap(env.eval_reset)(jax.random.split(key, NUM_ENVS)).goal,
            at_goal_success=out["at_goal"]["success"][0],
            at_goal_distance=out["at_goal"]["distance"][0],
            far_success=out["far"]["success"][0],
        )
        if "lifted" in out:
            out["high_terminated"] = out["lifted"]["terminated"][0]
            low = states.physics.replace(qpos=states.physics.qpos.at[:, 2].set(env.healthy_z[0] / 2))
            out["low_failed"] = jax.vmap(env._failed)(low, states.obs)
        return out, states

    out, states = jax.jit(run, compiler_options=FAST_COMPILE)(jax.random.PRNGKey(0))
    result = jax.tree_util.tree_map(np.asarray, out)
    result["states"] = states
    return result
