"""One compiled program per MuJoCo task, shared by every test that needs it.

Compiling an MJX program costs 15-40 s on a small CPU, while running it costs milliseconds, so the
tests of every task share `probe(task)`: a single jitted function that resets a few environments,
steps them 100 times with random actions (automatic resets on), and also takes one step from edited
states (goal on the achieved goal, goal far away, torso lifted above its healthy height), in the same
scan, so that the program holds one copy of the MJX step.
Results are cached for the whole test session.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl.envs import make_env
from deepcrl.envs.base import step_autoreset

NUM_ENVS = 4
STEPS = 100


@functools.lru_cache(maxsize=None)
def task(name: str):
    return make_env(name)


@functools.lru_cache(maxsize=None)
def probe(name: str) -> dict:
    env = task(name)

    def run(key):
        k_reset, k_steps = jax.random.split(key)
        states = jax.vmap(env.reset)(jax.random.split(k_reset, NUM_ENVS))
        # Edited copies of the reset states, stepped once with zero actions: goal on the achieved goal,
        # goal far away, and (locomotion) the torso lifted above its healthy height. They ride along in
        # the first step of the random-action scan, so the program holds one copy of the step, not two.
        achieved = jax.vmap(env.achieved_goal)(states.obs)
        edited = [states.replace(goal=achieved), states.replace(goal=achieved + 10 * env.goal_threshold)]
        locomotion = hasattr(env, "healthy_z")
        if locomotion:
            edited.append(states.replace(physics=states.physics.replace(qpos=states.physics.qpos.at[:, 2].set(env.healthy_z[1] + 1.0))))
        everything = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), states, *edited)
        moving = (jnp.arange((1 + len(edited)) * NUM_ENVS) < NUM_ENVS)[:, None]  # the edited copies take zero actions

        def one_step(s, k):
            actions = jnp.where(moving, jax.random.uniform(k, (moving.shape[0], env.action_size), jnp.float32, -1.0, 1.0), 0.0)
            s, stepped = jax.vmap(lambda s, a: step_autoreset(env, s, a))(s, actions)
            return s, (stepped.obs, stepped.goal, stepped.distance, stepped.success, stepped.terminated, stepped.truncated)

        _, (obs, goal, distance, success, terminated, truncated) = jax.lax.scan(one_step, everything, jax.random.split(k_steps, STEPS))
        first = lambda x, i: x[0, (i + 1) * NUM_ENVS : (i + 2) * NUM_ENVS]  # noqa: E731  (edited copy i after its one step)
        mine = lambda x: x[:, :NUM_ENVS]  # noqa: E731
        out = dict(
            obs=mine(obs),
            goal=mine(goal),
            distance=mine(distance),
            success=mine(success),
            terminated=mine(terminated),
            truncated=mine(truncated),
            reset_obs=states.obs,
            reset_goal=states.goal,
            eval_goal=jax.vmap(env.eval_reset)(jax.random.split(key, NUM_ENVS)).goal,
            at_goal_success=first(success, 0),
            at_goal_distance=first(distance, 0),
            far_success=first(success, 1),
        )
        if locomotion:
            out["high_terminated"] = first(terminated, 2)
            # a torso put under the floor is pushed back up within a step, so the low side is checked on the state itself
            low = states.physics.replace(qpos=states.physics.qpos.at[:, 2].set(env.healthy_z[0] / 2))
            out["low_failed"] = jax.vmap(env._failed)(low, states.obs)
        return out, states

    out, states = jax.jit(run)(jax.random.PRNGKey(0))
    result = {k: np.asarray(v) for k, v in out.items()}
    result["states"] = states
    return result
