"""TD3 (Fujimoto et al. 2018, "Addressing Function Approximation Error in Actor-Critic Methods") for
goal-conditioned tasks: a TD baseline on the same residual networks.

A deterministic actor mu(s, g) = tanh(ResidualMLP(concat(state, goal))) and two Q-networks over
concat(state, action, goal) (agents/common.py TwinQ), both with Polyak-averaged target copies. The
three ingredients of the paper:

- clipped double Q: y = r + gamma (1 - terminal) min_i Qtarget_i(s', a', g);
- target policy smoothing: a' = clip(mu_target(s', g) + clip(N(0, policy_noise), -noise_clip, noise_clip), -1, 1);
- delayed updates: the actor and all target networks are updated once every `policy_delay` Q updates
  (the actor maximising Q_1(s, mu(s, g), g)).

Exploration: mu(s, g) + N(0, exploration_noise), clipped to [-1, 1]; evaluation uses mu(s, g).
Rewards, terminal flags and goals come with the batch (replay.sample_td).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from deepcrl.config import Config  # the run config: the one source of the defaults agents share with it
from deepcrl.agents.common import CRITIC_FIELDS, TD_FIELDS, NetworkConfig, TwinQAgent, global_norm, polyak
from deepcrl.networks import ResidualMLP
from deepcrl.replay import TDBatch


@dataclass(frozen=True)
class TD3Config(NetworkConfig):
    gamma: float = Config.gamma  # TD discount (Fujimoto et al. 2018)
    tau: float = Config.tau  # target networks move this fraction towards the online networks per target update (Fujimoto et al. 2018)
    policy_noise: float = Config.policy_noise  # std of the target policy smoothing noise, actions in [-1, 1] (Fujimoto et al. 2018)
    noise_clip: float = Config.noise_clip  # the smoothing noise is clipped to +-noise_clip (Fujimoto et al. 2018)
    policy_delay: int = Config.policy_delay  # Q updates per actor and target update (Fujimoto et al. 2018)
    exploration_noise: float = Config.exploration_noise  # std of the Gaussian action noise while collecting (Fujimoto et al. 2018)
    preactivation_penalty: float = Config.preactivation_penalty  # coefficient of mean(pre-tanh action^2) in the actor loss, against tanh saturation (HER's DDPG, Andrychowicz et al. 2017: 1.0); 0 = off, plain TD3


@struct.dataclass
class TD3State:
    actor_params: Any  # parameters of mu(s, g)
    critic_params: Any  # the two Q-networks, stacked on a leading axis of 2
    target_actor_params: Any  # Polyak-averaged copy of the actor
    target_critic_params: Any  # Polyak-averaged copies of the Q-networks
    actor_opt: Any  # Adam state of the actor
    critic_opt: Any  # Adam state of the Q-networks
    steps: jax.Array  # [] int32, SGD (Q) steps taken

    def export(self) -> dict[str, Any]:
        return {"actor_params": self.actor_params, "critic_params": self.critic_params}

    def watched_params(self) -> dict[str, Any]:
        return {
            "critic parameters": self.critic_params,
            "actor parameters": self.actor_params,
            "target critic parameters": self.target_critic_params,
            "target actor parameters": self.target_actor_params,
        }


class TD3(TwinQAgent):
    """The networks and optimisers of one TD3 agent (static), with pure init / act / update."""

    name = "td3"
    config_class = TD3Config
    prefill_uniform = True  # uniform random actions fill the buffer before the first update (Fujimoto et al. 2018's start steps): a fresh deterministic actor with 0.1 noise explores too little
    watched = ("critic/loss", "actor/loss", "critic/grad_norm", "actor/grad_norm")
    run_fields = TD_FIELDS + ("policy_noise", "noise_clip", "policy_delay", "exploration_noise", "preactivation_penalty") + CRITIC_FIELDS
    default_learning_rate = 1e-3  # Fujimoto et al. 2018, Table 3
    actor_outputs = 1  # a deterministic action

    def __init__(self, config: TD3Config, axis_name: str | None = None):
        super().__init__(config, axis_name)
        self.actor = ResidualMLP(out_size=config.action_size, **config.actor_network())

    def init(self, key: jax.Array) -> TD3State:
        c = self.config
        actor_key, q_key = jax.random.split(key)
        actor_params = self.actor.init(actor_key, jnp.zeros((1, c.state_size + c.goal_size)))
        critic_params = self.q.init(q_key)
        return TD3State(
            actor_params=actor_params,
            critic_params=critic_params,
            target_actor_params=actor_params,
            target_critic_params=critic_params,
            **self.fresh_optimizer_states(actor=actor_params, critic=critic_params),
        )

    def policy(self, actor_params: Any, obs: jax.Array) -> jax.Array:
        """mu(s, g) = tanh(network output), for observations concat(state, goal)."""
        return jnp.tanh(self.actor.apply(actor_params, obs))

    def act(self, actor_params: Any, obs: jax.Array, key: jax.Array | None = None, deterministic: bool = False) -> jax.Array:
        """mu(s, g), plus clipped Gaussian exploration noise unless deterministic."""
        action = self.policy(actor_params, obs)
        if deterministic:
            return action
        noise = self.config.exploration_noise * jax.random.normal(key, action.shape, action.dtype)
        return jnp.clip(action + noise, -1.0, 1.0)

    def select_action(self, params: dict[str, Any], obs: jax.Array, key: jax.Array | None, samples: int) -> jax.Array:
        """`samples` 0: mu(s, g); 1: mu(s, g) plus exploration noise (best-of-K is not offered for TD3)."""
        return self.act(params["actor_params"], obs, key, deterministic=samples == 0)

    def td_target(self, state: TD3State, batch: TDBatch, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """y = r + gamma (1 - terminal) min_i Qtarget_i(s', a'), a' the smoothed target action; [B], no gradient."""
        c = self.config
        next_action = self.policy(state.target_actor_params, jnp.concatenate([batch.next_obs, batch.goal], axis=-1))
        noise = jnp.clip(c.policy_noise * self._batch_normal(key, next_action.shape, next_action.dtype), -c.noise_clip, c.noise_clip)
        next_action = jnp.clip(next_action + noise, -1.0, 1.0)
        next_q = jnp.min(self.q.apply(state.target_critic_params, batch.next_obs, next_action, batch.goal), axis=0)
        target = batch.reward + c.gamma * (1.0 - batch.terminal) * next_q
        return jax.lax.stop_gradient(target), {"critic/target_q": jnp.mean(next_q)}

    def actor_loss(self, actor_params: Any, critic_params: Any, batch: TDBatch):
        preactivation = self.actor.apply(actor_params, jnp.concatenate([batch.obs, batch.goal], axis=-1))
        action = jnp.tanh(preactivation)
        q1 = self.q.apply(critic_params, batch.obs, action, batch.goal)[0]
        loss = -jnp.mean(q1)
        metrics = {"actor/q": jnp.mean(q1), "actor/saturated": jnp.mean((jnp.abs(action) > 0.99).astype(jnp.float32))}
        if self.config.preactivation_penalty > 0:
            loss = loss + self.config.preactivation_penalty * jnp.mean(jnp.sum(jnp.square(preactivation), axis=-1))
        metrics["actor/loss"] = loss
        return loss, metrics

    def update(self, state: TD3State, batch: TDBatch, key: jax.Array) -> tuple[TD3State, dict[str, jax.Array]]:
        """One Q update; on every `policy_delay`-th step also one actor update and one target update."""
        c = self.config
        target, target_metrics = self.td_target(state, batch, key)
        (_, critic_metrics), critic_grads = jax.value_and_grad(self.critic_loss, has_aux=True)(state.critic_params, batch, target)
        critic_grads = self._device_mean_of_summed(critic_grads)
        updates, critic_opt = self.critic_optimizer.update(critic_grads, state.critic_opt, state.critic_params)
        critic_params = optax.apply_updates(state.critic_params, updates)
        state = state.replace(critic_params=critic_params, critic_opt=critic_opt, steps=state.steps + 1)

        def delayed(state: TD3State):
            (_, actor_metrics), actor_grads = jax.value_and_grad(self.actor_loss, has_aux=True)(
                state.actor_params, state.critic_params, batch
            )
            actor_grads = self._device_mean_of_summed(actor_grads)
            updates, actor_opt = self.actor_optimizer.update(actor_grads, state.actor_opt, state.actor_params)
            actor_params = optax.apply_updates(state.actor_params, updates)
            state = state.replace(
                actor_params=actor_params,
                actor_opt=actor_opt,
                target_actor_params=polyak(state.target_actor_params, actor_params, c.tau),
                target_critic_params=polyak(state.target_critic_params, state.critic_params, c.tau),
            )
            actor_metrics = self._mean_over_devices(actor_metrics)  # replicated, like the other branch's outputs
            return state, {**actor_metrics, "actor/grad_norm": global_norm(actor_grads), "actor/updated": jnp.float32(1.0)}

        def skipped(state: TD3State):
            zero = jnp.float32(0.0)
            return state, {"actor/loss": zero, "actor/q": zero, "actor/saturated": zero, "actor/grad_norm": zero, "actor/updated": zero}

        # the first step (steps = 1 after the Q update) updates the actor too, then every policy_delay-th
        state, actor_metrics = jax.lax.cond((state.steps - 1) % c.policy_delay == 0, delayed, skipped, state)
        metrics = self._mean_over_devices({**target_metrics, **critic_metrics})
        metrics.update(actor_metrics)
        metrics["critic/grad_norm"] = global_norm(critic_grads)
        return state, metrics
