"""The jitted programs of a training run: collect -> buffer -> relabel -> update.

Two pure functions do the work, and the trainer composes them:

    envs, episode_ids, chunk, stats = collect(task, agent, params, envs, episode_ids, key, length, ...)
    agent_state, step_metrics = learn(agent, sampler, agent_state, buffer, key, num_updates=..., batch_size=...)

`Trainer(setup)` builds, for one validated run (build.prepare), the programs of a run:

    state = trainer.init(key)              # agent, environments, buffer prefilled by the initial policy
    state, metrics = trainer.epoch(state)  # collect num_envs x unroll_length steps (lax.scan), then
                                           # updates_per_epoch SGD steps (lax.scan) on sampled batches
    metrics = trainer.evaluate(state, key) # the evaluation policy on evaluation episodes (evaluate.py)

All are pure functions of their inputs. `--num-seeds N` vmaps them over a leading seed axis of the
whole state (N independent runs in one program); `--num-devices D` runs them per device inside
shard_map, environments, buffer columns and batch rows split over devices and parameters replicated
(parallel.py). The host loop around them (logs, checkpoints, signals) is loop.py.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from deepcrl import parallel, replay
from deepcrl.agents import Agent, Sampler
from deepcrl.build import Setup, learner_setup, prepare
from deepcrl.config import Config
from deepcrl.envs.base import Env, EnvState, step_autoreset
from deepcrl.evaluate import evaluation_policy, make_evaluate
from deepcrl.health import epoch_health, watched_names
from deepcrl.metrics import epoch_means


@struct.dataclass
class TrainState:
    agent: Any  # the agent's state: networks, optimisers (and targets, temperature: see agents/)
    envs: EnvState  # [num_envs] environment states
    episode_ids: jax.Array  # [num_envs] int32, id of each environment's current episode
    buffer: replay.ReplayBuffer  # trajectories of all environments
    key: jax.Array  # PRNG key for the next epoch
    env_steps: jax.Array  # [] int32, training environment steps so far (prefill not counted)
    epoch: jax.Array  # [] int32, epochs done
    learner: Any = None  # --learner-depth: the learner's agent state (it learns from `buffer`, never collects)


STATE_SPECS = TrainState(  # how each part of the state is laid out over the devices' mesh
    agent=parallel.REPLICATED,
    envs=parallel.SPLIT,
    episode_ids=parallel.SPLIT,
    buffer=replay.ReplayBuffer(data=parallel.SPLIT_SECOND, insert_pos=parallel.REPLICATED, count=parallel.REPLICATED),
    key=parallel.REPLICATED,
    env_steps=parallel.REPLICATED,
    epoch=parallel.REPLICATED,
)
LEARNER_KEY = 0x1EA  # folded into the run's keys for the learner's: the collector's keys are those of a run without one


def run_keys(config: Config) -> tuple[jax.Array, jax.Array]:
    """(init key, evaluation key) of a run; stacked over seeds seed .. seed+N-1 when num_seeds > 1.

    Seed s of an N-seed run gets exactly the keys a single run with --seed s gets.
    """
    pairs = [jax.random.split(jax.random.PRNGKey(config.seed + i)) for i in range(config.num_seeds)]
    if config.num_seeds == 1:
        return pairs[0][0], pairs[0][1]
    return jnp.stack([p[0] for p in pairs]), jnp.stack([p[1] for p in pairs])


# ----------------------------------------------------------------------------------------------
# The two pure pieces
# ----------------------------------------------------------------------------------------------


def collect(
    task: Env,
    agent: Agent,
    params: dict[str, Any],
    envs: EnvState,
    episode_ids: jax.Array,
    key: jax.Array,
    length: int,
    *,
    action_samples: int = 1,
    chain_goals: bool = False,
    keep_first_goal: bool = False,
    store_td: bool = False,
    uniform_actions: bool = False,
    axis_name: str | None = None,
):
    """`length` steps of every environment with the agent's exploration policy, as a [length, num_envs]
    chunk of transitions for replay.insert.

    `params`: the agent state's `export()`; actions by `agent.select_action(..., action_samples)`
    (`--explore-action-samples`), or uniform in [-1, 1] with `uniform_actions`. Episodes that end are
    reset (with a fresh goal; `chain_goals`, `keep_first_goal`: see envs.base.step_autoreset). `store_td`: the chunk also
    holds commanded goals, next states and terminal flags (TD agents). Returns (envs, episode_ids,
    chunk, {"collect/success_rate", "collect/episodes"}).
    """

    def one_step(carry, step_key):
        envs, episode_ids = carry
        obs = jax.vmap(task.observation)(envs)
        if uniform_actions:
            actions = jax.random.uniform(step_key, (obs.shape[0], task.action_size), minval=-1.0, maxval=1.0)
        else:
            actions = agent.select_action(params, obs, step_key, action_samples)
        nxt, stepped = jax.vmap(lambda s, a: step_autoreset(task, s, a, chain_goals, keep_first_goal))(envs, actions)
        done = jnp.maximum(stepped.terminated, stepped.truncated) > 0
        transition = replay.Transition(obs=envs.obs, action=actions, next_achieved=task.achieved_goal(stepped.obs), episode_id=episode_ids)
        if store_td:
            transition = transition.replace(goal=envs.goal, next_obs=stepped.obs, terminated=stepped.terminated)
        stats = (stepped.success, done.astype(jnp.float32))
        return (nxt, episode_ids + done.astype(jnp.int32)), (transition, stats)

    (envs, episode_ids), (chunk, (success, done)) = jax.lax.scan(
        one_step, parallel.per_device((envs, episode_ids), axis_name), jax.random.split(key, length)
    )
    stats = {
        "collect/success_rate": parallel.mean_over_devices(jnp.mean(success), axis_name),
        "collect/episodes": parallel.sum_over_devices(jnp.sum(done), axis_name),
    }
    return envs, episode_ids, chunk, stats


def learn(
    agent: Agent,
    sampler: Sampler,
    agent_state: Any,
    buffer: replay.ReplayBuffer,
    key: jax.Array,
    *,
    num_updates: int,
    batch_size: int,
    axis_name: str | None = None,
) -> tuple[Any, dict[str, jax.Array]]:
    """`num_updates` SGD steps (lax.scan), each on a fresh batch of `batch_size` rows from `buffer`.

    Returns (agent state, per-step metrics [num_updates] each: the agent's, then the sampler's
    `replay/...`). Data parallel, each device samples its own rows (`batch_size` is per device) and
    the update key is the same on every device.
    """

    def sgd_step(agent_state, step_key):
        sample_key, update_key = jax.random.split(step_key)  # update_key: the same on every device
        batch, replay_metrics = sampler(buffer, parallel.device_key(sample_key, axis_name), batch_size)
        agent_state, metrics = agent.update(agent_state, batch, update_key)
        metrics.update(parallel.mean_over_devices(replay_metrics, axis_name))
        return agent_state, metrics

    return jax.lax.scan(sgd_step, agent_state, jax.random.split(key, num_updates))


# ----------------------------------------------------------------------------------------------
# The programs of a run
# ----------------------------------------------------------------------------------------------


class Trainer:
    """Pure, jitted programs of a training run for one validated config (a `build.Setup`, or a Config,
    which is validated here).

    `init(key)`, `epoch(state)`, `refill(state)`, `evaluate(state, key)`. With num_seeds N > 1 the key
    and every leaf of the state and of the metrics get a leading seed axis of length N. With D > 1
    devices, the `_init` / `_epoch` / `_refill` bodies below run per device on num_envs / D
    environments and batch_size / D rows, and the returned state is a global array laid out by
    `state_specs`.
    """

    def __init__(self, setup: Setup | Config):
        setup = prepare(setup)
        self.setup, self.config, self.env = setup, setup.config, setup.task
        config = self.config
        self.num_seeds = config.num_seeds
        self.num_devices = parallel.resolve_num_devices(config)
        self.axis_name = parallel.DATA_AXIS if self.num_devices > 1 else None
        self.agent = setup.build_agent(axis_name=self.axis_name)
        self.sampler = self.agent.make_sampler(config, self.env)
        self.td_data = self.agent.data == "td"  # the buffer keeps goals, next states and terminal flags
        self.watched_names = watched_names(self.agent, jax.eval_shape(self.agent.init, jax.random.PRNGKey(0)))
        self.local_num_envs = config.num_envs // self.num_devices  # environments (and buffer columns) per device
        self.local_batch_size = config.batch_size // self.num_devices  # SGD rows per device
        self._evaluate = make_evaluate(self.env, config.num_eval_envs, policy_takes_key=config.eval_action_samples > 0)
        # the collector / learner split: a second agent learning from the same buffer, never collecting
        self.learner_setup = learner_setup(setup)
        self.learner_agent = self.learner_setup.build_agent(axis_name=self.axis_name) if self.learner_setup else None
        self.learner_sampler = self.learner_agent.make_sampler(self.learner_setup.config, self.env) if self.learner_agent else None

        init, epoch, refill, evaluate = self._init, self._epoch, self._refill, self._evaluate_state
        if self.num_seeds > 1:
            init, epoch, refill, evaluate = (jax.vmap(f) for f in (init, epoch, refill, evaluate))
        self.mesh, self.state_specs = None, None
        if self.num_devices > 1:
            self.mesh = parallel.make_mesh(self.num_devices)
            specs = STATE_SPECS.replace(learner=parallel.REPLICATED) if self.learner_agent else STATE_SPECS
            self.state_specs = parallel.prefix_specs(specs, 1 if self.num_seeds > 1 else 0)
            rep = parallel.REPLICATED
            init = parallel.shard(init, self.mesh, rep, self.state_specs)
            epoch = parallel.shard(epoch, self.mesh, (self.state_specs,), (self.state_specs, rep))
            refill = parallel.shard(refill, self.mesh, (self.state_specs,), self.state_specs)
        self.init = jax.jit(init)
        self.epoch = jax.jit(epoch, donate_argnums=0)
        self.evaluate = jax.jit(evaluate)  # replicated parameters: every device evaluates, no shard_map needed
        self.refill = jax.jit(refill)

    def state_shapes(self) -> TrainState:
        """Shapes and dtypes of the global training state (nothing is computed)."""
        return jax.eval_shape(self.init, run_keys(self.config)[0])

    def place(self, state: TrainState) -> TrainState:
        """Put a state restored on the host where the programs expect it (split over the mesh's devices)."""
        return parallel.put(state, self.mesh, self.state_specs)

    def _collect(self, params, envs: EnvState, episode_ids: jax.Array, key: jax.Array, length: int, uniform_actions: bool = False):
        c = self.config
        return collect(
            self.env,
            self.agent,
            params,
            envs,
            episode_ids,
            parallel.device_key(key, self.axis_name),
            length,
            action_samples=c.explore_action_samples,
            chain_goals=c.chain_goals,
            keep_first_goal=c.keep_first_goal,
            store_td=self.td_data,
            uniform_actions=uniform_actions,
            axis_name=self.axis_name,
        )

    def _empty_buffer(self) -> replay.ReplayBuffer:
        env = self.env
        return replay.init_buffer(
            self.config.buffer_size, self.local_num_envs, env.state_size, env.action_size, env.goal_size, td=self.td_data
        )

    def _init(self, key: jax.Array) -> TrainState:
        c, n = self.config, self.local_num_envs
        agent_key, env_key, prefill_key, key = jax.random.split(key, 4)
        agent_state = self.agent.init(agent_key)  # the same on every device
        envs = jax.vmap(self.env.reset)(jax.random.split(parallel.device_key(env_key, self.axis_name), n))
        episode_ids = jnp.zeros((n,), jnp.int32)
        buffer = self._empty_buffer()
        if c.prefill_steps > 0:
            envs, episode_ids, chunk, _ = self._collect(
                agent_state.export(), envs, episode_ids, prefill_key, c.prefill_steps, uniform_actions=self.agent.prefill_uniform
            )
            buffer = replay.insert(buffer, chunk)
        learner = self.learner_agent.init(jax.random.fold_in(agent_key, LEARNER_KEY)) if self.learner_agent else None
        return TrainState(
            agent=agent_state,
            envs=envs,
            episode_ids=episode_ids,
            buffer=buffer,
            key=key,
            env_steps=jnp.int32(0),
            epoch=jnp.int32(0),
            learner=learner,
        )

    def _refill(self, state: TrainState) -> TrainState:
        """A fresh buffer prefilled by the current policy (resuming from a checkpoint saved without one)."""
        steps = max(self.config.prefill_steps, -(-self.local_batch_size // self.local_num_envs))  # enough rows for one batch
        envs, episode_ids, chunk, _ = self._collect(
            state.agent.export(), state.envs, state.episode_ids, jax.random.fold_in(state.key, 0x5EED), steps
        )
        return state.replace(buffer=replay.insert(self._empty_buffer(), chunk), envs=envs, episode_ids=episode_ids)

    def _epoch(self, state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        c = self.config
        collect_key, sgd_key, key = jax.random.split(state.key, 3)
        envs, episode_ids, chunk, collect_stats = self._collect(
            state.agent.export(), state.envs, state.episode_ids, collect_key, c.unroll_length
        )
        buffer = replay.insert(state.buffer, chunk)
        agent_state, step_metrics = learn(
            self.agent,
            self.sampler,
            state.agent,
            buffer,
            sgd_key,
            num_updates=c.updates_per_epoch,
            batch_size=self.local_batch_size,
            axis_name=self.axis_name,
        )
        health = epoch_health(self.agent, step_metrics, agent_state)
        metrics = epoch_means(step_metrics)
        metrics.update(collect_stats)
        metrics.update(health)
        learner = state.learner
        if self.learner_agent is not None:  # the same number of SGD steps, on its own batches of the same buffer
            learner, learner_steps = learn(
                self.learner_agent,
                self.learner_sampler,
                state.learner,
                buffer,
                jax.random.fold_in(sgd_key, LEARNER_KEY),
                num_updates=c.updates_per_epoch,
                batch_size=self.local_batch_size,
                axis_name=self.axis_name,
            )
            metrics.update({f"learner/{k}": v for k, v in epoch_means(learner_steps).items()})
        new_state = TrainState(
            agent=agent_state,
            envs=envs,
            episode_ids=episode_ids,
            buffer=buffer,
            key=key,
            env_steps=state.env_steps + c.env_steps_per_epoch,
            epoch=state.epoch + 1,
            learner=learner,
        )
        return new_state, metrics

    def _evaluate_state(self, state: TrainState, key: jax.Array) -> dict[str, jax.Array]:
        samples = self.config.eval_action_samples
        metrics = self._evaluate(evaluation_policy(self.agent, state.agent.export(), samples), key)
        if self.learner_agent is not None:  # the same evaluation episodes (the same key) for the learner
            learned = self._evaluate(evaluation_policy(self.learner_agent, state.learner.export(), samples), key)
            metrics.update({f"learner/{k}": v for k, v in learned.items()})
        return metrics
