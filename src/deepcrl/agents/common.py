"""What every agent shares: the network settings, the twin Q-network, optimisers, Polyak averaging,
the data-parallel helpers and the defaults of the `Agent` interface (agents/base.py).

Data parallel (`axis_name` set, `update` called inside shard_map with the parameters replicated and the
batch split over devices): losses are means over each device's rows; the gradient of a replicated
parameter comes back summed over devices (shard_map's transpose of a replicated input), so it is divided
by the device count, which makes it the gradient of the global-batch mean. Gaussian noise is drawn for
the global batch and sliced, so every row gets the noise it would get on one device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
import optax

from deepcrl.config import Config  # the run config: the one source of the defaults agents share with it
from deepcrl import replay
from deepcrl.networks import ResidualMLP, deterministic_action, project_kernels, resolve_unroll, sample_tanh_gaussian

if TYPE_CHECKING:
    from deepcrl.envs.base import Env


@dataclass(frozen=True)
class NetworkConfig:
    state_size: int  # size of the state observation (policy input without the goal)
    goal_size: int  # size of the goal slice
    action_size: int  # size of the action
    actor_depth: int = 4  # Dense layers in the actor's residual blocks
    critic_depth: int = 4  # Dense layers in each critic network's residual blocks
    actor_width: int = 256  # actor hidden width
    critic_width: int = 256  # critic hidden width
    normalization: str = Config.normalization  # layer_norm, none or hyperspherical (networks.NORMALIZATIONS)
    activation: str = Config.activation  # swish or relu
    residual: bool = Config.residual  # skip connections around each block of 4 layers
    actor_unroll: int = 1  # blocks per scan iteration in the actor
    critic_unroll: int = 1  # blocks per scan iteration in the critic networks
    remat: bool = Config.remat  # recompute each residual block's activations in the backward pass
    matmul_dtype: str = Config.matmul_dtype  # float32 or bfloat16 matrix multiplies (parameters and LayerNorm stay float32)
    actor_lr: float = 3e-4  # Adam step size, actor
    critic_lr: float = 3e-4  # Adam step size, critic
    max_grad_norm: float = Config.max_grad_norm  # clip actor and critic gradients to this global norm; 0 = off

    @property
    def hyperspherical(self) -> bool:
        """Whether the networks keep unit-norm kernels (their optimisers project after every step)."""
        return self.normalization == "hyperspherical"

    def trunk(self) -> dict[str, Any]:
        """Keyword arguments every residual network of this agent shares."""
        return dict(
            normalization=self.normalization,
            activation=self.activation,
            residual=self.residual,
            remat=self.remat,
            matmul_dtype=self.matmul_dtype,
        )

    def actor_network(self) -> dict[str, Any]:
        """The trunk settings of the actor network (networks.Trunk's fields)."""
        return dict(width=self.actor_width, depth=self.actor_depth, unroll=self.actor_unroll, **self.trunk())

    def critic_network(self) -> dict[str, Any]:
        """The trunk settings of each critic network (phi and psi, or each Q-network)."""
        return dict(width=self.critic_width, depth=self.critic_depth, unroll=self.critic_unroll, **self.trunk())


@dataclass(frozen=True)
class TemperatureConfig(NetworkConfig):
    """A NetworkConfig with a tuned entropy temperature (CRL, SAC): alpha is driven towards a target entropy."""

    entropy_scale: float = 0.5  # target entropy = -entropy_scale x action size
    alpha_lr: float = Config.alpha_lr  # Adam step size, log alpha

    @property
    def target_entropy(self) -> float:
        return -self.entropy_scale * self.action_size


def network_settings(config: Config, task: Env, default_learning_rate: float) -> dict[str, Any]:
    """The `NetworkConfig` fields a run config gives for `task`: sizes, depths and widths (each network's
    own, else --depth / --width), the unroll rule (networks.resolve_unroll), learning rates (the agent's
    default when unset)."""
    actor_depth, critic_depth = config.resolved_actor_depth, config.resolved_critic_depth
    return dict(
        state_size=task.state_size,
        goal_size=task.goal_size,
        action_size=task.action_size,
        actor_depth=actor_depth,
        critic_depth=critic_depth,
        actor_width=config.resolved_actor_width,
        critic_width=config.resolved_critic_width,
        normalization=config.resolved_normalization,
        activation=config.activation,
        residual=config.residual,
        actor_unroll=resolve_unroll(config.network_unroll, actor_depth),
        critic_unroll=resolve_unroll(config.network_unroll, critic_depth),
        remat=config.remat,
        matmul_dtype=config.matmul_dtype,
        actor_lr=default_learning_rate if config.actor_lr is None else config.actor_lr,
        critic_lr=default_learning_rate if config.critic_lr is None else config.critic_lr,
        max_grad_norm=config.max_grad_norm,
    )


class AgentDefaults:
    """Defaults of the `Agent` interface's optional answers (agents/base.py), and the one rule that
    builds an agent from a run config."""

    name: ClassVar[str]
    config_class: ClassVar[type]
    default_learning_rate: ClassVar[float]
    best_of_k: ClassVar[bool] = False
    run_fields: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_run_config(cls, config: Config, task: Env, axis_name: str | None = None):
        """The agent a validated run config describes. Its config's network fields come from
        `network_settings`; every other field from the run config's field of the same name, and where
        that is None (unset), from the agent class's `default_<name>` (e.g. `default_entropy_scale`)."""
        network = network_settings(config, task, cls.default_learning_rate)
        own = {}
        for field in dataclasses.fields(cls.config_class):
            if field.name in network or not hasattr(config, field.name):
                continue
            value = getattr(config, field.name)
            own[field.name] = getattr(cls, f"default_{field.name}") if value is None else value
        return cls(cls.config_class(**network, **own), axis_name=axis_name)

    def fresh_optimizer_states(self, **params: Any) -> dict[str, Any]:
        """The state fields of a fresh agent beside its parameters: for each `name=tree`, `<name>_opt`, the
        initial state of `self.<name>_optimizer` for that tree; and `steps`, 0."""
        out = {f"{name}_opt": getattr(self, f"{name}_optimizer").init(tree) for name, tree in params.items()}
        out["steps"] = jnp.int32(0)
        return out

    def cost_model(self, config: Config, num_devices: int):
        return None  # the dry run's FLOP and memory models describe CRL's update only

    @classmethod
    def label(cls, config: Config) -> str:
        return cls.name

    @classmethod
    def describe(cls, config: Config) -> str:
        return cls.label(config)


class RelabelledData:
    """Agents that learn from (state, action, future goal) batches: CRL, GCBC (replay.sample)."""

    data: ClassVar[str] = "relabelled"

    def make_sampler(self, config: Config, task: Env) -> replay.FutureGoalSampler:
        return replay.FutureGoalSampler(gamma=config.gamma)


# Groups of run-config fields that several agents read (their `run_fields` are made of these and their own).
CRITIC_FIELDS = ("critic_depth", "critic_width", "critic_lr")  # agents with a critic
TEMPERATURE_FIELDS = ("entropy_scale", "alpha_lr")  # agents with a tuned entropy temperature (TemperatureConfig)
TD_FIELDS = ("her", "her_fraction", "reward", "goal_terminal", "tau")  # agents learning from TD batches (TDData)


class TDData:
    """Agents that learn from TD transitions with rewards, with HER when --her (replay.sample_td): SAC, TD3."""

    data: ClassVar[str] = "td"
    name: ClassVar[str]

    def make_sampler(self, config: Config, task: Env) -> replay.TDSampler:
        return replay.TDSampler(
            her_fraction=config.her_fraction if config.her else 0.0,
            threshold=task.goal_threshold,
            reward=config.reward,
            goal_terminal=config.goal_terminal,
        )

    @classmethod
    def label(cls, config: Config) -> str:
        return cls.name + (" + HER" if config.her else "")

    @classmethod
    def describe(cls, config: Config) -> str:
        return f"{cls.label(config)}, {config.reward} reward"

    def summary_rows(self, last: dict[str, float]) -> list[tuple[str, str]]:
        return [("critic", f"TD loss {last['critic/loss']:.4f}, mean Q {last['critic/q']:.3f}, sampled reward {last['replay/reward']:.3f}")]


def adam(learning_rate: float, max_grad_norm: float = 0.0, project: bool = False) -> optax.GradientTransformation:
    """Adam, after global-norm clipping when max_grad_norm > 0; `project` (hyperspherical networks): then
    every kernel is put back on the unit sphere (`unit_kernels`)."""
    steps = ([optax.clip_by_global_norm(max_grad_norm)] if max_grad_norm > 0 else []) + [optax.adam(learning_rate)]
    steps += [unit_kernels()] if project else []
    return steps[0] if len(steps) == 1 else optax.chain(*steps)


def unit_kernels() -> optax.GradientTransformation:
    """The last step of a hyperspherical network's optimiser: updates that land the parameters on
    networks.project_kernels(params + updates), every Dense kernel with unit-norm columns."""

    def update(updates, state, params):
        new = project_kernels(optax.apply_updates(params, updates))
        return jax.tree_util.tree_map(lambda n, p: n - p, new, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def global_norm(tree: Any) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree_util.tree_leaves(tree)))


def polyak(target: Any, online: Any, tau: float) -> Any:
    """target <- (1 - tau) target + tau online, leaf by leaf: the target moves a fraction tau towards online."""
    return jax.tree_util.tree_map(lambda t, o: t + tau * (o - t), target, online)


def all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)]))


def temperature_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float):
    """alpha x (entropy - target): gradient descent raises alpha while the policy's entropy is below the target."""
    alpha = jnp.exp(log_alpha)
    loss = alpha * jnp.mean(jax.lax.stop_gradient(-log_prob - target_entropy))
    return loss, {"alpha/loss": loss, "alpha/value": alpha}


class TanhGaussianPolicy:
    """`act` for an agent whose `self.actor` is a networks.Actor (CRL, SAC, GCBC)."""

    actor: Any

    def act(self, actor_params: Any, obs: jax.Array, key: jax.Array | None = None, deterministic: bool = False) -> jax.Array:
        """Actions for policy observations concat(state, goal); sampled unless deterministic (tanh(mean))."""
        mean, log_std = self.actor.apply(actor_params, obs)
        if deterministic:
            return deterministic_action(mean)
        action, _ = sample_tanh_gaussian(key, mean, log_std)
        return action

    def best_of_samples(
        self, actor_params: Any, critic_params: Any, obs: jax.Array, key: jax.Array, samples: int
    ) -> tuple[jax.Array, jax.Array]:
        """Multi-sample action selection: draw `samples` actions from pi(. | s, g) for every row and keep
        the one the critic scores highest (the reference code's --eval_actor K / --expl_actor K).

        Needs `self.q_value(critic_params, state, action, goal)`. Returns (actions [B, A], their
        critic values [B]). `obs` is concat(state, goal).
        """
        mean, log_std = self.actor.apply(actor_params, obs)
        eps = jax.random.normal(key, (samples,) + mean.shape, mean.dtype)
        actions = jnp.tanh(mean[None] + jnp.exp(log_std)[None] * eps)  # [K, B, A]
        state, goal = obs[..., : self.config.state_size], obs[..., self.config.state_size :]
        q = jax.vmap(lambda a: self.q_value(critic_params, state, a, goal))(actions)  # [K, B]
        best = jnp.argmax(q, axis=0)
        rows = jnp.arange(obs.shape[0])
        return actions[best, rows], q[best, rows]

    def select_action(self, params: dict[str, Any], obs: jax.Array, key: jax.Array | None, samples: int) -> jax.Array:
        """The action of an action-selection rule: `samples` 0 = the deterministic tanh(mean), 1 = one
        sample of the policy, K >= 2 = the best of K samples by the critic (`best_of_samples`).
        `params` holds `actor_params` (and `critic_params` for K >= 2)."""
        if samples == 0:
            return self.act(params["actor_params"], obs, deterministic=True)
        if samples == 1:
            return self.act(params["actor_params"], obs, key)
        return self.best_of_samples(params["actor_params"], params["critic_params"], obs, key, samples)[0]


class TwinQ:
    """Two independent Q(s, a, g) networks, each the residual MLP on concat(state, action, goal) -> 1.

    Their parameters are stacked along a leading axis of 2 and applied with vmap, so both run as one
    batched program. `apply` returns [2, B].
    """

    def __init__(self, config: NetworkConfig):
        c = config
        self.net = ResidualMLP(out_size=1, **c.critic_network())
        self.in_size = c.state_size + c.action_size + c.goal_size

    def init(self, key: jax.Array) -> Any:
        x = jnp.zeros((1, self.in_size))
        return jax.vmap(self.net.init, in_axes=(0, None))(jax.random.split(key, 2), x)

    def apply(self, params: Any, obs: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action, goal], axis=-1)
        return jax.vmap(self.net.apply, in_axes=(0, None))(params, x)[..., 0]


class TwinQCritic:
    """What an actor + TwinQ agent (SAC, TD3) shares: its value, its TD critic loss and its parameter groups.

    Needs `self.q` (a TwinQ) and `self.config` (a NetworkConfig); `actor_outputs` is the actor network's
    outputs per action dimension (2: mean and log std; 1: a deterministic action).
    """

    actor_outputs: ClassVar[int]
    q: TwinQ
    config: NetworkConfig

    def q_value(self, critic_params: Any, obs: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
        """min of the twin Q(s, a, g), the value the actor climbs. [B]"""
        return jnp.min(self.q.apply(critic_params, obs, action, goal), axis=0)

    def critic_loss(self, critic_params: Any, batch: Any, target: jax.Array):
        """Both Q-networks regressed onto one TD target: 0.5 mean over rows of sum_i (Q_i - y)^2."""
        q = self.q.apply(critic_params, batch.obs, batch.action, batch.goal)  # [2, B]
        loss = 0.5 * jnp.mean(jnp.sum(jnp.square(q - target[None]), axis=0))
        return loss, {"critic/loss": loss, "critic/q": jnp.mean(q), "critic/td_target": jnp.mean(target)}

    def param_groups(self, state: Any) -> dict[str, Any]:
        return {"actor": state.actor_params, "q (x2)": state.critic_params}


class DataParallel:
    """Helpers for an agent whose update may run inside shard_map over `axis_name` (identities when None)."""

    axis_name: str | None = None

    def _num_devices(self) -> int:
        return 1 if self.axis_name is None else jax.lax.axis_size(self.axis_name)

    def _gather(self, x: jax.Array) -> jax.Array:
        """The global batch's rows of x, in device order."""
        return x if self.axis_name is None else jax.lax.all_gather(x, self.axis_name, tiled=True)

    def _row_offset(self, local_rows: int) -> jax.Array | int:
        """Index of this device's first row in the global batch."""
        return 0 if self.axis_name is None else jax.lax.axis_index(self.axis_name) * local_rows

    def _mean_over_devices(self, tree: Any) -> Any:
        return tree if self.axis_name is None else jax.lax.pmean(tree, self.axis_name)

    def _device_mean_of_summed(self, grads: Any) -> Any:
        """Gradients of replicated parameters arrive summed over devices; their mean is the global-batch gradient."""
        if self.axis_name is None:
            return grads
        d = self._num_devices()
        return jax.tree_util.tree_map(lambda g: g / d, grads)

    def _batch_normal(self, key: jax.Array, local_shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        """N(0, 1) noise for this device's rows, sliced from the global batch's noise (rows on axis 0)."""
        if self.axis_name is None:
            return jax.random.normal(key, local_shape, dtype)
        rows = local_shape[0]
        eps = jax.random.normal(key, (rows * self._num_devices(),) + tuple(local_shape[1:]), dtype)
        return jax.lax.dynamic_slice_in_dim(eps, self._row_offset(rows), rows)


class RelabelledAgent(RelabelledData, AgentDefaults, DataParallel, TanhGaussianPolicy):
    """The bases of a tanh-Gaussian agent that learns from future-goal batches (CRL, GCBC)."""


class TwinQAgent(TDData, TwinQCritic, AgentDefaults, DataParallel):
    """The bases of an actor + TwinQ agent that learns from TD batches (SAC, TD3); its subclass adds the actor."""

    def __init__(self, config: NetworkConfig, axis_name: str | None = None):
        self.config, self.axis_name = config, axis_name
        self.q = TwinQ(config)
        self.actor_optimizer = adam(config.actor_lr, config.max_grad_norm, config.hyperspherical)
        self.critic_optimizer = adam(config.critic_lr, config.max_grad_norm, config.hyperspherical)
