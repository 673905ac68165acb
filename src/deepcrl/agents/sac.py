"""Soft Actor-Critic (SAC) for goal-conditioned tasks: a TD baseline on the same residual networks.

Haarnoja et al. 2018 ("Soft Actor-Critic Algorithms and Applications"): two Q-networks Q_1, Q_2 over
concat(state, action, goal) (agents/common.py TwinQ), each regressed onto one target

    y = r + gamma (1 - terminal) [min_i Qtarget_i(s', a', g) - alpha log pi(a' | s', g)],  a' ~ pi(. | s', g)

computed with target networks that trail the Q-networks by Polyak averaging (rate tau per update);
the actor is the tanh-Gaussian of CRL (networks.Actor) minimising E[alpha log pi(a|s,g) - min_i Q_i(s, a, g)];
the temperature alpha is tuned towards the target entropy -entropy_scale x action size.

Rewards, terminal flags and goals come with the batch (replay.sample_td): the sparse goal reward (1
within the task's goal threshold, else 0) or a dense one, with hindsight relabelling when --her is on.
One SGD step updates the Q-networks, then the actor and alpha with the updated Q-networks, then the
targets, all on the same minibatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from deepcrl.config import Config  # the run config: the one source of the defaults agents share with it
from deepcrl.agents.common import (
    CRITIC_FIELDS,
    TD_FIELDS,
    TEMPERATURE_FIELDS,
    TanhGaussianPolicy,
    TemperatureConfig,
    TwinQAgent,
    global_norm,
    polyak,
    temperature_loss,
)
from deepcrl.networks import Actor, sample_tanh_gaussian
from deepcrl.replay import TDBatch


@dataclass(frozen=True)
class SACConfig(TemperatureConfig):
    entropy_scale: float = (
        1.0  # target entropy = -entropy_scale x action size (-dim(A): Haarnoja et al. 2018); log alpha's Adam 3e-4 as there
    )
    gamma: float = Config.gamma  # TD discount (Haarnoja et al. 2018, Table 1)
    tau: float = Config.tau  # target networks move this fraction towards the Q-networks per update (Haarnoja et al. 2018)


@struct.dataclass
class SACState:
    actor_params: Any  # parameters of pi(a | s, g)
    critic_params: Any  # the two Q-networks, stacked on a leading axis of 2
    target_critic_params: Any  # their Polyak-averaged copies
    log_alpha: jax.Array  # [] log of the entropy temperature
    actor_opt: Any  # Adam state of the actor
    critic_opt: Any  # Adam state of the Q-networks
    alpha_opt: Any  # Adam state of log alpha
    steps: jax.Array  # [] int32, SGD steps taken

    def export(self) -> dict[str, Any]:
        return {"actor_params": self.actor_params, "critic_params": self.critic_params, "log_alpha": self.log_alpha}

    def watched_params(self) -> dict[str, Any]:
        return {
            "critic parameters": self.critic_params,
            "actor parameters": self.actor_params,
            "target critic parameters": self.target_critic_params,
            "log alpha": self.log_alpha,
        }


class SAC(TwinQAgent, TanhGaussianPolicy):
    """The networks and optimisers of one SAC agent (static), with pure init / act / update."""

    name = "sac"
    config_class = SACConfig
    prefill_uniform = False  # the initial (stochastic) policy collects the prefill
    watched = ("critic/loss", "actor/loss", "alpha/loss", "critic/grad_norm", "actor/grad_norm")
    run_fields = TD_FIELDS + TEMPERATURE_FIELDS + CRITIC_FIELDS
    default_learning_rate = 3e-4  # Haarnoja et al. 2018, Table 1
    default_entropy_scale = 1.0  # target entropy -dim(A), Haarnoja et al. 2018
    best_of_k = True
    actor_outputs = 2  # mean and log std

    def __init__(self, config: SACConfig, axis_name: str | None = None):
        super().__init__(config, axis_name)
        self.actor = Actor(action_size=config.action_size, **config.actor_network())
        self.alpha_optimizer = optax.adam(config.alpha_lr)

    def init(self, key: jax.Array) -> SACState:
        c = self.config
        actor_key, q_key = jax.random.split(key)
        actor_params = self.actor.init(actor_key, jnp.zeros((1, c.state_size + c.goal_size)))
        critic_params = self.q.init(q_key)
        log_alpha = jnp.zeros((), jnp.float32)
        return SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            log_alpha=log_alpha,
            **self.fresh_optimizer_states(actor=actor_params, critic=critic_params, alpha=log_alpha),
        )

    def _policy_sample(self, actor_params: Any, obs: jax.Array, goal: jax.Array, key: jax.Array):
        mean, log_std = self.actor.apply(actor_params, jnp.concatenate([obs, goal], axis=-1))
        return sample_tanh_gaussian(None, mean, log_std, eps=self._batch_normal(key, mean.shape, mean.dtype))

    def td_target(self, state: SACState, batch: TDBatch, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """y = r + gamma (1 - terminal) (min_i Qtarget_i(s', a') - alpha log pi(a'|s')), a' ~ pi; [B], no gradient."""
        next_action, next_log_prob = self._policy_sample(state.actor_params, batch.next_obs, batch.goal, key)
        next_q = jnp.min(self.q.apply(state.target_critic_params, batch.next_obs, next_action, batch.goal), axis=0)
        soft_value = next_q - jnp.exp(state.log_alpha) * next_log_prob
        target = batch.reward + self.config.gamma * (1.0 - batch.terminal) * soft_value
        return jax.lax.stop_gradient(target), {"critic/target_q": jnp.mean(next_q)}

    def actor_loss(self, actor_params: Any, critic_params: Any, log_alpha: jax.Array, batch: TDBatch, key: jax.Array):
        action, log_prob = self._policy_sample(actor_params, batch.obs, batch.goal, key)
        q = jnp.min(self.q.apply(critic_params, batch.obs, action, batch.goal), axis=0)
        loss = jnp.mean(jnp.exp(log_alpha) * log_prob - q)
        return loss, ({"actor/loss": loss, "actor/q": jnp.mean(q), "actor/entropy": -jnp.mean(log_prob)}, log_prob)

    def alpha_loss(self, log_alpha: jax.Array, log_prob: jax.Array):
        return temperature_loss(log_alpha, log_prob, self.config.target_entropy)

    def update(self, state: SACState, batch: TDBatch, key: jax.Array) -> tuple[SACState, dict[str, jax.Array]]:
        """One SGD step: Q-networks, then actor and alpha (with the updated Q-networks), then targets."""
        target_key, actor_key = jax.random.split(key)
        target, target_metrics = self.td_target(state, batch, target_key)
        (_, critic_metrics), critic_grads = jax.value_and_grad(self.critic_loss, has_aux=True)(state.critic_params, batch, target)
        critic_grads = self._device_mean_of_summed(critic_grads)
        updates, critic_opt = self.critic_optimizer.update(critic_grads, state.critic_opt, state.critic_params)
        critic_params = optax.apply_updates(state.critic_params, updates)

        (_, (actor_metrics, log_prob)), actor_grads = jax.value_and_grad(self.actor_loss, has_aux=True)(
            state.actor_params, critic_params, state.log_alpha, batch, actor_key
        )
        (_, alpha_metrics), alpha_grad = jax.value_and_grad(self.alpha_loss, has_aux=True)(state.log_alpha, log_prob)
        actor_grads, alpha_grad = self._device_mean_of_summed((actor_grads, alpha_grad))
        updates, actor_opt = self.actor_optimizer.update(actor_grads, state.actor_opt, state.actor_params)
        alpha_updates, alpha_opt = self.alpha_optimizer.update(alpha_grad, state.alpha_opt, state.log_alpha)

        metrics = self._mean_over_devices({**target_metrics, **critic_metrics, **actor_metrics, **alpha_metrics})
        metrics["critic/grad_norm"] = global_norm(critic_grads)
        metrics["actor/grad_norm"] = global_norm(actor_grads)
        new_state = SACState(
            actor_params=optax.apply_updates(state.actor_params, updates),
            critic_params=critic_params,
            target_critic_params=polyak(state.target_critic_params, critic_params, self.config.tau),
            log_alpha=optax.apply_updates(state.log_alpha, alpha_updates),
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            alpha_opt=alpha_opt,
            steps=state.steps + 1,
        )
        return new_state, metrics
