"""One compiled program per MuJoCo task, shared by every test that needs it.

Compiling an MJX program costs 15-40 s on a small CPU, while running it costs milliseconds, so the
tests of every task share `probe(task)`: a single jitted function that resets a few environments,
steps them 100 times with random actions (automatic resets on), and also takes one step from edited
states (goal on the achieved goal, goal far away, torso lifted above its healthy height).
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

        def one_step(s, k):
            actions = jax.random.uniform(k, (NUM_ENVS, env.action_size), jnp.float32, -1.0, 1.0)
            s, stepped = jax.vmap(lambda s, a: step_autoreset(env, s, a))(s, actions)
            return s, (stepped.obs, stepped.goal, stepped.distance, stepped.success, stepped.terminated, stepped.truncated)

        _, (obs, goal, distance, success, terminated, truncated) = jax.lax.scan(one_step, states, jax.random.split(k_steps, STEPS))
        # one batched step from edited copies of the reset states: goal on the achieved goal, goal far
        # away, and (locomotion) the torso lifted above its healthy height; one step program, not three
        achieved = jax.vmap(env.achieved_goal)(states.obs)
        edited = [states.replace(goal=achieved), states.replace(goal=achieved + 10 * env.goal_threshold)]
        locomotion = hasattr(env, "healthy_z")
        if locomotion:
            edited.append(states.replace(physics=states.physics.replace(qpos=states.physics.qpos.at[:, 2].set(env.healthy_z[1] + 1.0))))
        batch = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *edited)
        stepped = jax.vmap(env.step)(batch, jnp.zeros((len(edited) * NUM_ENVS, env.action_size), jnp.float32))
        part = lambda x, i: x[i * NUM_ENVS : (i + 1) * NUM_ENVS]  # noqa: E731
        out = dict(
            obs=obs,
            goal=goal,
            distance=distance,
            success=success,
            terminated=terminated,
            truncated=truncated,
            reset_obs=states.obs,
            reset_goal=states.goal,
            eval_goal=jax.vmap(env.eval_reset)(jax.random.split(key, NUM_ENVS)).goal,
            at_goal_success=part(stepped.success, 0),
            at_goal_distance=part(stepped.distance, 0),
            far_success=part(stepped.success, 1),
        )
        if locomotion:
            out["high_terminated"] = part(stepped.terminated, 2)
            # a torso put under the floor is pushed back up within a step, so the low side is checked on the state itself
            low = states.physics.replace(qpos=states.physics.qpos.at[:, 2].set(env.healthy_z[0] / 2))
            out["low_failed"] = jax.vmap(env._failed)(low, states.obs)
        return out, states

    out, states = jax.jit(run)(jax.random.PRNGKey(0))
    result = {k: np.asarray(v) for k, v in out.items()}
    result["states"] = states
    return result
