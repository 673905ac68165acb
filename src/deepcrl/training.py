"""The training program: collect -> buffer -> relabel -> update, one jitted function per epoch.

    trainer = Trainer(config)
    state = trainer.init(key)              # agent, environments, buffer prefilled by the initial policy
    state, metrics = trainer.epoch(state)  # collect num_envs x unroll_length steps (lax.scan), then
                                           # updates_per_epoch SGD steps (lax.scan) on relabelled batches
    metrics = trainer.evaluate(state, key) # deterministic policy on evaluation episodes

All three are pure functions of their inputs. `--num-seeds N` vmaps them over a leading seed axis of
the whole state (N independent runs in one program); `--num-devices D` runs them per device inside
shard_map, environments, buffer columns and batch rows split over devices and parameters replicated
(parallel.py). `train(config)` is the thin host loop around them: it writes the run directory, logs
between epochs and saves checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from deepcrl import parallel, replay
from deepcrl.agents.common import all_finite
from deepcrl.agents.crl import CRL, CRLConfig
from deepcrl.agents.gcbc import GCBC, GCBCConfig
from deepcrl.agents.sac import SAC, SACConfig
from deepcrl.agents.td3 import TD3, TD3Config
from deepcrl.checkpoint import list_train_states, restore_train_state, save_checkpoint, save_train_state
from deepcrl.config import Config, make_env_from_config, validate
from deepcrl.envs.base import Env, EnvState, step_autoreset
from deepcrl.errors import CheckpointWriteError, ConfigError, NumericalError
from deepcrl.evaluate import make_evaluate
from deepcrl.logger import MetricsLogger, read_metrics, truncate_metrics
from deepcrl.progress import RunProgress

# Blocks per scan iteration when Config.unroll == 0. Measured on a 2-core CPU (docs/benchmarks.md):
# a fully unrolled network is faster for shallow nets, while compile time grows with unrolled depth.
UNROLL_ALL_UP_TO_DEPTH = 16
DEEP_UNROLL = 1


def resolve_unroll(config_unroll: int, depth: int) -> int:
    blocks = depth // 4
    if config_unroll > 0:
        return min(config_unroll, blocks)
    return blocks if depth <= UNROLL_ALL_UP_TO_DEPTH else DEEP_UNROLL


def _health(agent: Any, step_metrics: dict[str, jax.Array], agent_state: Any) -> dict[str, jax.Array]:
    """The first SGD step (within the epoch) where a watched quantity stopped being finite, and which.

    `health/first_bad_step` is -1 when everything stayed finite. `health/bad_quantity` indexes
    `watched_names(agent, agent_state)`: the agent's watched metrics, then its parameter groups
    (parameters are checked once, after the epoch's last step).
    """
    bad = jnp.stack([~jnp.isfinite(step_metrics[name]) for name in agent.watched], axis=1)  # [steps, quantities]
    any_bad = jnp.any(bad, axis=1)
    first_step = jnp.argmax(any_bad)
    quantity = jnp.argmax(bad[first_step])
    params_ok = jnp.stack([all_finite(tree) for tree in agent_state.watched_params().values()])
    last_step = any_bad.shape[0] - 1
    step = jnp.where(jnp.any(any_bad), first_step, jnp.where(jnp.all(params_ok), -1, last_step))
    quantity = jnp.where(jnp.any(any_bad), quantity, len(agent.watched) + jnp.argmin(params_ok))
    return {"health/first_bad_step": step.astype(jnp.int32), "health/bad_quantity": quantity.astype(jnp.int32)}


def watched_names(agent: Any, agent_state_shapes: Any) -> tuple[str, ...]:
    """What `health/bad_quantity` indexes: the agent's watched metrics, then its watched parameter groups."""
    return tuple(agent.watched) + tuple(agent_state_shapes.watched_params())


def _epoch_means(metrics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-epoch means of per-step metrics. An agent that updates its actor only on some steps (TD3)
    reports `actor/updated` (1.0 or 0.0); its actor metrics are averaged over the steps that updated."""
    updated = metrics.get("actor/updated")
    out = {}
    for name, values in metrics.items():
        if updated is not None and name.startswith("actor/") and name != "actor/updated":
            out[name] = jnp.sum(values * updated) / jnp.maximum(jnp.sum(updated), 1.0)
        else:
            out[name] = jnp.mean(values)
    return out


@struct.dataclass
class TrainState:
    agent: Any  # the agent's state: networks, optimisers (and targets, temperature: see agents/)
    envs: EnvState  # [num_envs] environment states
    episode_ids: jax.Array  # [num_envs] int32, id of each environment's current episode
    buffer: replay.ReplayBuffer  # trajectories of all environments
    key: jax.Array  # PRNG key for the next epoch
    env_steps: jax.Array  # [] int32, training environment steps so far (prefill not counted)
    epoch: jax.Array  # [] int32, epochs done


_STATE_SPECS = TrainState(  # how each part of the state is laid out over the devices' mesh
    agent=parallel.REPLICATED,
    envs=parallel.SPLIT,
    episode_ids=parallel.SPLIT,
    buffer=replay.ReplayBuffer(data=parallel.SPLIT_SECOND, insert_pos=parallel.REPLICATED, count=parallel.REPLICATED),
    key=parallel.REPLICATED,
    env_steps=parallel.REPLICATED,
    epoch=parallel.REPLICATED,
)


def run_keys(config: Config) -> tuple[jax.Array, jax.Array]:
    """(init key, evaluation key) of a run; stacked over seeds seed .. seed+N-1 when num_seeds > 1.

    Seed s of an N-seed run gets exactly the keys a single run with --seed s gets.
    """
    pairs = [jax.random.split(jax.random.PRNGKey(config.seed + i)) for i in range(config.num_seeds)]
    if config.num_seeds == 1:
        return pairs[0][0], pairs[0][1]
    return jnp.stack([p[0] for p in pairs]), jnp.stack([p[1] for p in pairs])


def build_agent(config: Config, axis_name: str | None = None) -> tuple[Env, Any]:
    """The task and the agent (`--agent`) a config describes (`axis_name`: the data-parallel mesh axis, if any)."""
    env = make_env_from_config(config)
    actor_depth, critic_depth = config.resolved_actor_depth, config.resolved_critic_depth
    networks = dict(
        state_size=env.state_size,
        goal_size=env.goal_size,
        action_size=env.action_size,
        actor_depth=actor_depth,
        critic_depth=critic_depth,
        actor_width=config.resolved_actor_width,
        critic_width=config.resolved_critic_width,
        layer_norm=config.layer_norm,
        activation=config.activation,
        residual=config.residual,
        actor_unroll=resolve_unroll(config.unroll, actor_depth),
        critic_unroll=resolve_unroll(config.unroll, critic_depth),
        remat=config.remat,
        matmul_dtype=config.matmul_dtype,
        actor_lr=config.resolved_actor_lr,
        critic_lr=config.resolved_critic_lr,
        max_grad_norm=config.max_grad_norm,
    )
    if config.agent == "crl":
        agent_config = CRLConfig(
            **networks, repr_dim=config.repr_dim, energy=config.energy, contrastive_loss=config.contrastive_loss,
            logsumexp_penalty=config.logsumexp_penalty, entropy_scale=config.resolved_entropy_scale, alpha_lr=config.alpha_lr,
        )
        return env, CRL(agent_config, axis_name=axis_name)
    if config.agent == "sac":
        agent_config = SACConfig(**networks, gamma=config.gamma, tau=config.tau,
                                 entropy_scale=config.resolved_entropy_scale, alpha_lr=config.alpha_lr)
        return env, SAC(agent_config, axis_name=axis_name)
    if config.agent == "td3":
        agent_config = TD3Config(**networks, gamma=config.gamma, tau=config.tau, policy_noise=config.policy_noise,
                                 noise_clip=config.noise_clip, policy_delay=config.policy_delay,
                                 exploration_noise=config.exploration_noise, preactivation_penalty=config.preactivation_penalty)
        return env, TD3(agent_config, axis_name=axis_name)
    if config.agent == "gcbc":
        return env, GCBC(GCBCConfig(**networks), axis_name=axis_name)
    raise ConfigError(f"agent={config.agent!r} is not allowed; choose one of: crl, sac, td3, gcbc")


def evaluation_policy(agent: Any, params: dict[str, Any], samples: int):
    """The policy evaluation runs (`--eval-action-samples`): obs -> tanh(mean) when `samples` is 0, else
    (obs, key) -> one policy sample (1) or the best of `samples` policy samples by the critic (>= 2)."""
    if samples == 0:
        return lambda obs: agent.act(params["actor_params"], obs, deterministic=True)
    return lambda obs, key: agent.select_action(params, obs, key, samples)


class Trainer:
    """Pure, jitted pieces of a training run for one config.

    `init(key)`, `epoch(state)`, `refill(state)`, `evaluate(state, key)`. With num_seeds N > 1 the key
    and every leaf of the state and of the metrics get a leading seed axis of length N. With D > 1
    devices, the `_init` / `_epoch` / `_refill` bodies below run per device on num_envs / D
    environments and batch_size / D rows, and the returned state is a global array laid out by
    `state_specs`.
    """

    def __init__(self, config: Config):
        validate(config)
        self.config = config
        self.num_seeds = config.num_seeds
        self.num_devices = parallel.resolve_num_devices(config)
        self.axis_name = parallel.DATA_AXIS if self.num_devices > 1 else None
        self.env, self.agent = build_agent(config, axis_name=self.axis_name)
        self.td_data = self.agent.data == "td"  # the buffer keeps goals, next states and terminal flags
        self.watched_names = watched_names(self.agent, jax.eval_shape(self.agent.init, jax.random.PRNGKey(0)))
        self.local_num_envs = config.num_envs // self.num_devices  # environments (and buffer columns) per device
        self.local_batch_size = config.batch_size // self.num_devices  # SGD rows per device
        self._evaluate = make_evaluate(self.env, config.num_eval_envs, policy_takes_key=config.eval_action_samples > 0)

        init, epoch, refill, evaluate = self._init, self._epoch, self._refill, self._evaluate_state
        if self.num_seeds > 1:
            init, epoch, refill, evaluate = (jax.vmap(f) for f in (init, epoch, refill, evaluate))
        self.mesh, self.state_specs = None, None
        if self.num_devices > 1:
            self.mesh = parallel.make_mesh(self.num_devices)
            self.state_specs = parallel.prefix_specs(_STATE_SPECS, 1 if self.num_seeds > 1 else 0)
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

    # ----- per-device helpers (identities on one device) -----
    def _device_key(self, key: jax.Array) -> jax.Array:
        """A key of this device's own stream (environments, replay sampling)."""
        return key if self.axis_name is None else jax.random.fold_in(key, jax.lax.axis_index(self.axis_name))

    def _mean_over_devices(self, x: Any) -> Any:
        return x if self.axis_name is None else jax.lax.pmean(x, self.axis_name)

    def _sum_over_devices(self, x: Any) -> Any:
        return x if self.axis_name is None else jax.lax.psum(x, self.axis_name)

    def _per_device(self, tree: Any) -> Any:
        """Mark every leaf as differing across devices (a scan carry must keep one replication type)."""
        if self.axis_name is None:
            return tree

        def cast(x):
            aval = jax.typeof(x)  # JAX < 0.10 names the varying axes `aval.vma`
            varying = aval.manual_axis_type.varying if hasattr(aval, "manual_axis_type") else aval.vma
            if self.axis_name in varying:
                return x
            if not hasattr(jax.lax, "pcast"):  # JAX < 0.8
                return jax.lax.pvary(x, (self.axis_name,))
            return jax.lax.pcast(x, (self.axis_name,), to="varying")

        return jax.tree_util.tree_map(cast, tree)

    # ----- collection -----
    def _collect(self, params, envs: EnvState, episode_ids: jax.Array, key: jax.Array, length: int,
                 uniform_actions: bool = False):
        """`length` steps of every environment with the agent's exploration policy (`params`: the agent
        state's `export()`; actions by `--explore-action-samples`), or with `uniform_actions`, actions
        uniform in [-1, 1]; as a [length, num_envs] chunk of transitions."""
        env, agent = self.env, self.agent

        def one_step(carry, step_key):
            envs, episode_ids = carry
            obs = jax.vmap(env.observation)(envs)
            if uniform_actions:
                actions = jax.random.uniform(step_key, (obs.shape[0], env.action_size), minval=-1.0, maxval=1.0)
            else:
                actions = agent.select_action(params, obs, step_key, self.config.explore_action_samples)
            nxt, stepped = jax.vmap(lambda s, a: step_autoreset(env, s, a, self.config.chain_goals))(envs, actions)
            done = jnp.maximum(stepped.terminated, stepped.truncated) > 0
            transition = replay.Transition(
                obs=envs.obs,
                action=actions,
                next_achieved=env.achieved_goal(stepped.obs),
                episode_id=episode_ids,
            )
            if self.td_data:
                transition = transition.replace(goal=envs.goal, next_obs=stepped.obs, terminated=stepped.terminated)
            stats = (stepped.success, done.astype(jnp.float32))
            return (nxt, episode_ids + done.astype(jnp.int32)), (transition, stats)

        (envs, episode_ids), (chunk, (success, done)) = jax.lax.scan(
            one_step, self._per_device((envs, episode_ids)), jax.random.split(key, length)
        )
        stats = {
            "collect/success_rate": self._mean_over_devices(jnp.mean(success)),
            "collect/episodes": self._sum_over_devices(jnp.sum(done)),
        }
        return envs, episode_ids, chunk, stats

    # ----- the three programs -----
    def _init(self, key: jax.Array) -> TrainState:
        c, env, n = self.config, self.env, self.local_num_envs
        agent_key, env_key, prefill_key, key = jax.random.split(key, 4)
        agent_state = self.agent.init(agent_key)  # the same on every device
        envs = jax.vmap(env.reset)(jax.random.split(self._device_key(env_key), n))
        episode_ids = jnp.zeros((n,), jnp.int32)
        buffer = replay.init_buffer(c.buffer_size, n, env.state_size, env.action_size, env.goal_size, td=self.td_data)
        if c.prefill_steps > 0:
            envs, episode_ids, chunk, _ = self._collect(
                agent_state.export(), envs, episode_ids, self._device_key(prefill_key), c.prefill_steps,
                uniform_actions=self.agent.prefill_uniform,
            )
            buffer = replay.insert(buffer, chunk)
        return TrainState(
            agent=agent_state, envs=envs, episode_ids=episode_ids, buffer=buffer, key=key,
            env_steps=jnp.int32(0), epoch=jnp.int32(0),
        )

    def _refill(self, state: TrainState) -> TrainState:
        """A fresh buffer prefilled by the current policy (resuming from a checkpoint saved without one)."""
        c, env, n = self.config, self.env, self.local_num_envs
        buffer = replay.init_buffer(c.buffer_size, n, env.state_size, env.action_size, env.goal_size, td=self.td_data)
        envs, episode_ids = state.envs, state.episode_ids
        steps = max(c.prefill_steps, -(-self.local_batch_size // n))  # enough rows for one batch
        envs, episode_ids, chunk, _ = self._collect(
            state.agent.export(), envs, episode_ids, self._device_key(jax.random.fold_in(state.key, 0x5EED)), steps
        )
        return state.replace(buffer=replay.insert(buffer, chunk), envs=envs, episode_ids=episode_ids)

    def _epoch(self, state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
        c = self.config
        collect_key, sgd_key, key = jax.random.split(state.key, 3)
        envs, episode_ids, chunk, collect_stats = self._collect(
            state.agent.export(), state.envs, state.episode_ids, self._device_key(collect_key), c.unroll_length
        )
        buffer = replay.insert(state.buffer, chunk)

        def sgd_step(agent_state, step_key):
            sample_key, update_key = jax.random.split(step_key)  # update_key: the same on every device
            sample_key = self._device_key(sample_key)
            if self.td_data:
                batch = replay.sample_td(
                    buffer, sample_key, self.local_batch_size, her_fraction=c.her_fraction if c.her else 0.0,
                    threshold=self.env.goal_threshold, reward=c.reward, goal_terminal=c.goal_terminal,
                )
                replay_metrics = {"replay/reward": jnp.mean(batch.reward), "replay/terminal": jnp.mean(batch.terminal),
                                  "replay/relabelled": jnp.mean(batch.relabelled)}
            else:
                batch = replay.sample(buffer, sample_key, self.local_batch_size, c.gamma)
                replay_metrics = {"replay/goal_offset": jnp.mean(batch.offset.astype(jnp.float32))}
            agent_state, metrics = self.agent.update(agent_state, batch, update_key)
            metrics.update(self._mean_over_devices(replay_metrics))
            return agent_state, metrics

        agent_state, metrics = jax.lax.scan(sgd_step, state.agent, jax.random.split(sgd_key, c.updates_per_epoch))
        health = _health(self.agent, metrics, agent_state)
        metrics = _epoch_means(metrics)
        metrics.update(collect_stats)
        metrics.update(health)
        new_state = TrainState(
            agent=agent_state, envs=envs, episode_ids=episode_ids, buffer=buffer, key=key,
            env_steps=state.env_steps + c.env_steps_per_epoch, epoch=state.epoch + 1,
        )
        return new_state, metrics

    def _evaluate_state(self, state: TrainState, key: jax.Array) -> dict[str, jax.Array]:
        return self._evaluate(evaluation_policy(self.agent, state.agent.export(), self.config.eval_action_samples), key)


# ----------------------------------------------------------------------------------------------
# The host loop
# ----------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    run_dir: Path  # where config.json, metrics.csv, tensorboard/ and checkpoint/ were written
    metrics: dict[str, float]  # the last evaluation (and training metrics of its epoch)
    final_score: dict[str, float]  # eval metrics averaged over the last 5 evaluations
    history: list[dict[str, float]]  # every row written to metrics.csv
    interrupted: bool = False  # stopped early by SIGINT / SIGTERM; resume with deepcrl train --resume


def default_run_dir(config: Config) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    env = config.env if config.layout is None else f"{config.env}-{config.layout.replace(':', '_').replace('/', '_')}"
    seeds = f"s{config.seed}" if config.num_seeds == 1 else f"s{config.seed}-{config.seed + config.num_seeds - 1}"
    agent = "" if config.agent == "crl" else f"-{config.agent}{'-her' if config.her else ''}"
    return Path("runs") / f"{env}{agent}-d{config.depth}-{seeds}-{stamp}"


def prepare_run_dir(config: Config) -> tuple[Config, Path]:
    """Resolve and check the output folder before anything is compiled; ConfigError if unusable."""
    run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(config)
    if (run_dir / "config.json").exists() or (run_dir / "metrics.csv").exists():
        raise ConfigError(f"run_dir={str(run_dir)!r} already holds a run; choose another --run-dir")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run_dir={str(run_dir)!r} is a file, not a folder; choose another --run-dir")
    # Find the deepest existing ancestor and check we can write there, without creating anything.
    probe = run_dir
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"run_dir={str(run_dir)!r} is not writable ({str(probe)!r} does not accept new files); choose another --run-dir")
    layout = config.layout
    if layout is not None and layout.startswith("maze:"):
        layout = "maze:" + str(Path(layout[5:]).expanduser().resolve())
    return dataclasses.replace(config, run_dir=str(run_dir), layout=layout), run_dir


def checkpoint_bytes(trainer: Trainer) -> int:
    """Bytes one training-state checkpoint takes (arrays only; msgpack adds little)."""
    shapes = trainer.state_shapes()
    if not trainer.config.save_buffer:
        shapes = shapes.replace(buffer=None)
    return sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(shapes))


def check_disk_space(trainer: Trainer, run_dir: Path) -> None:
    """ConfigError if the run directory's disk cannot hold the checkpoints the run will keep."""
    probe = run_dir
    while not probe.exists():
        probe = probe.parent
    need = checkpoint_bytes(trainer) * (trainer.config.keep_checkpoints + 1) + (16 << 20)  # + one being written, + logs
    free = shutil.disk_usage(probe).free
    if free < need:
        raise ConfigError(
            f"run_dir={str(run_dir)!r} has {free / 2**20:.0f} MiB free, but this run's checkpoints need about {need / 2**20:.0f} MiB; "
            f"free space, choose another --run-dir, lower --keep-checkpoints or use --no-save-buffer"
        )


def train(config: Config, console: Any = None) -> RunResult:
    """Train one agent end to end; returns the final metrics and the run directory.

    Nothing is written before the whole config has been validated and the run directory checked.
    """
    validate(config)
    config, run_dir = prepare_run_dir(config)
    trainer = Trainer(config)
    check_disk_space(trainer, run_dir)
    parallel.sync_processes("deepcrl: run directory checked")  # before process 0 writes into it
    if parallel.is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(config.to_json())
    init_key, _ = run_keys(config)
    return _run(trainer, run_dir, trainer.init(init_key), history=[], console=console)


def resume(run_dir: str | Path, config: Config | None = None, console: Any = None) -> RunResult:
    """Continue a run from its newest training-state checkpoint, exactly as if it had never stopped.

    `config`, if given, must equal the stored one except for `progress` and `tensorboard`; any other
    difference would change the run and raises ConfigError naming the field.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"--resume {str(run_dir)!r}: no config.json there; give the folder of a run started by deepcrl train")
    stored = Config.load(run_dir / "config.json")
    if config is not None:
        changed = [f.name for f in dataclasses.fields(Config)
                   if f.name not in RESUME_MAY_CHANGE and getattr(config, f.name) != getattr(stored, f.name)]
        if changed:
            name = changed[0]
            raise ConfigError(
                f"--resume: {name}={getattr(config, name)!r} contradicts the run's stored {name}={getattr(stored, name)!r}; "
                f"a resumed run keeps its settings (only {', '.join(RESUME_MAY_CHANGE)} may change)"
            )
        stored = dataclasses.replace(stored, **{k: getattr(config, k) for k in RESUME_MAY_CHANGE})
    validate(stored)
    checkpoints = list_train_states(run_dir)
    if not checkpoints:
        raise ConfigError(f"--resume {str(run_dir)!r}: no training-state checkpoint in {str(run_dir / 'state')!r} (set --checkpoint-every to save them)")
    trainer = Trainer(stored)
    target = trainer.state_shapes()
    state, buffer_restored = restore_train_state(checkpoints[-1], target)
    state = trainer.place(state)
    if not buffer_restored:
        state = trainer.refill(state)
    history = truncate_metrics(run_dir, epochs_done(state)) if parallel.is_main_process() else []
    parallel.sync_processes("deepcrl: metrics truncated")
    if not parallel.is_main_process() and (run_dir / "metrics.csv").exists():
        history = read_metrics(run_dir)
    return _run(trainer, run_dir, state, history=history, console=console)


RESUME_MAY_CHANGE = ("progress", "tensorboard")  # Config fields a resumed run may change


def _run(trainer: Trainer, run_dir: Path, state: TrainState, history: list[dict[str, float]], console: Any) -> RunResult:
    """The host loop from `state` to the last epoch: log, checkpoint, stop cleanly on SIGINT / SIGTERM."""
    config = trainer.config
    _, eval_key = run_keys(config)
    eval_epochs = set(config.eval_epochs)
    first_epoch = epochs_done(state) + 1
    elapsed_before = history[-1]["time_s"] if history else 0.0
    start = time.perf_counter()

    stop = {"signal": None}
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        def request_stop(signum, _frame):
            if stop["signal"] is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C stops at once, without a checkpoint
            stop["signal"] = signal.Signals(signum).name

        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, request_stop)

    def checkpoint(state: TrainState) -> Path:
        try:
            return save_train_state(run_dir, state, keep=config.keep_checkpoints, save_buffer=config.save_buffer)
        except OSError as e:
            saved = list_train_states(run_dir)
            kept = f"the previous checkpoint {saved[-1]} is intact" if saved else "no earlier checkpoint exists"
            raise CheckpointWriteError(f"could not write the checkpoint of epoch {epochs_done(state)} in {run_dir / 'state'}: {e.strerror or e}; {kept}") from None

    main_process = parallel.is_main_process()  # the only one writing logs (all take part in computing)
    logger = MetricsLogger(run_dir, tensorboard=config.tensorboard) if main_process else None
    progress = RunProgress(config, console=console, enabled=config.progress and main_process,
                           episode_length=trainer.env.episode_length)
    interrupted = False
    try:
        with progress:
            last_row = history[-1] if history else {}
            progress.update((first_epoch - 1) * config.env_steps_per_epoch, last_row)
            for epoch in range(first_epoch, config.num_epochs + 1):
                state, train_metrics = trainer.epoch(state)
                _raise_if_unhealthy(config, run_dir, epoch, trainer.watched_names, train_metrics.pop("health/first_bad_step"),
                                    train_metrics.pop("health/bad_quantity"))
                if epoch in eval_epochs:
                    eval_metrics = trainer.evaluate(state, _fold_in(eval_key, epoch, config.num_seeds))
                    train_metrics, eval_metrics = parallel.to_host((train_metrics, eval_metrics))
                    env_steps = epoch * config.env_steps_per_epoch
                    row = {
                        "epoch": epoch,
                        "env_steps": env_steps,
                        "sgd_steps": epoch * config.updates_per_epoch,
                        "time_s": round(elapsed_before + time.perf_counter() - start, 3),
                        **metric_columns(eval_metrics, config),
                        **metric_columns(train_metrics, config),
                    }
                    if logger is not None:
                        logger.log(row, step=env_steps)
                    history.append(row)
                    last_row = row
                progress.update(epoch * config.env_steps_per_epoch, last_row)
                if config.checkpoint_every and epoch % config.checkpoint_every == 0 and epoch < config.num_epochs:
                    checkpoint(state)
                if stop["signal"] is not None and epoch < config.num_epochs:
                    where = checkpoint(state)
                    interrupted = True
                    break
        if not interrupted:
            jax.block_until_ready(state)
            if config.checkpoint_every:
                checkpoint(state)
            save_checkpoint(run_dir, config, state.agent)
    finally:
        if logger is not None:
            logger.close()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    if interrupted:
        # Plain print, not rich: a wrapped path could not be copied into the resume command.
        print(f"{stop['signal']}: stopped after epoch {epochs_done(state)} of {config.num_epochs}; checkpoint {where}", file=sys.stderr)
        print(f"resume with: deepcrl train --resume {run_dir}", file=sys.stderr)
    final = final_score(history) if history else {}
    result = RunResult(run_dir=run_dir, metrics=history[-1] if history else {}, final_score=final, history=history,
                       interrupted=interrupted)
    if not interrupted and main_process:
        progress.summary(result, elapsed_before + time.perf_counter() - start)
    return result


def epochs_done(state: TrainState) -> int:
    """Epochs a state has done (the same for every seed of a --num-seeds run)."""
    return int(np.asarray(parallel.to_host(state.epoch)).max())


def _fold_in(key: jax.Array, data: int, num_seeds: int) -> jax.Array:
    return jax.random.fold_in(key, data) if num_seeds == 1 else jax.vmap(lambda k: jax.random.fold_in(k, data))(key)


def metric_columns(metrics: dict[str, Any], config: Config) -> dict[str, float]:
    """metrics.csv columns of one row. One seed: the values. N seeds: for each metric its mean over
    seeds under the plain name, the standard error of that mean as `NAME/se` (std with ddof 1 over
    sqrt N), and every seed's value as `NAME/seed<S>` (S the seed itself).
    """
    if config.num_seeds == 1:
        return {k: float(v) for k, v in metrics.items()}
    n = config.num_seeds
    row = {}
    for k, v in metrics.items():
        v = np.asarray(v, np.float64)
        row[k] = float(v.mean())
        row[f"{k}/se"] = float(v.std(ddof=1) / np.sqrt(n))
        for i in range(n):
            row[f"{k}/seed{config.seed + i}"] = float(v[i])
    return row


def _raise_if_unhealthy(config: Config, run_dir: Path, epoch: int, names: tuple[str, ...], first_bad_step: Any,
                        bad_quantity: Any) -> None:
    """NumericalError naming the quantity, SGD step (and seed) where a NaN / Inf first appeared."""
    steps, quantities = np.atleast_1d(parallel.to_host(first_bad_step)), np.atleast_1d(parallel.to_host(bad_quantity))
    bad_seeds = np.flatnonzero(steps >= 0)
    if bad_seeds.size == 0:
        return
    i = int(bad_seeds[0])
    name = names[int(quantities[i])]
    sgd_step = (epoch - 1) * config.updates_per_epoch + int(steps[i]) + 1
    which = f" of seed {config.seed + i}" if config.num_seeds > 1 else ""
    saved = list_train_states(run_dir)
    kept = f"the last good checkpoint is {saved[-1]}" if saved else "no checkpoint had been saved yet"
    raise NumericalError(
        f"{name}{which} became NaN or Inf at SGD step {sgd_step} (epoch {epoch}); {kept}; "
        f"lower the learning rates (--actor-lr, --critic-lr) or set --max-grad-norm"
    )


def final_score(history: list[dict[str, float]], last: int = 5) -> dict[str, float]:
    """Evaluation metrics averaged over the last `last` evaluations (the paper's reported score)."""
    rows = history[-last:]
    keys = [k for k in rows[-1] if k.startswith("eval/")]
    return {k: sum(r[k] for r in rows) / len(rows) for k in keys}
