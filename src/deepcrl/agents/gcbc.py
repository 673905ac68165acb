"""Goal-conditioned behaviour cloning on the agent's own relabelled experience (GCBC, run online: GCSL).

Ghosh et al. 2021 ("Learning to Reach Goals via Iterated Supervised Learning", GCSL): an action that
led from s to a state reached later in the same trajectory is a good action for reaching that state.
So the policy pi(a | s, g) is fitted by maximum likelihood to (s_t, a_t, g = achieved goal of s_{t+k})
drawn from the replay buffer with the same future-state relabelling as CRL (replay.sample: k geometric
with parameter 1 - gamma, truncated at the trajectory's end), while the policy itself keeps collecting
the data. Offline, on a fixed dataset, the same loss is GCBC.

The policy is CRL's tanh-Gaussian actor (networks.Actor); the log-likelihood of a stored action a is
that of x = atanh(a) under the Gaussian, with the tanh change of variables (actions are clipped to
+-(1 - 1e-6) first, so atanh stays finite). No critic, no entropy bonus, no reward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from deepcrl.agents.common import NetworkConfig, RelabelledAgent, adam, global_norm
from deepcrl.networks import Actor, deterministic_action, tanh_gaussian_log_prob
from deepcrl.replay import Batch


@dataclass(frozen=True)
class GCBCConfig(NetworkConfig):
    """Only the actor's fields are used (GCBC has no critic)."""


@struct.dataclass
class GCBCState:
    actor_params: Any  # parameters of pi(a | s, g)
    actor_opt: Any  # Adam state of the actor
    steps: jax.Array  # [] int32, SGD steps taken

    def export(self) -> dict[str, Any]:
        return {"actor_params": self.actor_params}

    def watched_params(self) -> dict[str, Any]:
        return {"actor parameters": self.actor_params}


class GCBC(RelabelledAgent):
    """The policy network and optimiser of one GCBC / GCSL agent (static), with pure init / act / update."""

    name = "gcbc"
    config_class = GCBCConfig
    prefill_uniform = False  # the initial (stochastic) policy collects the prefill
    watched = ("actor/loss", "actor/grad_norm")
    default_learning_rate = 3e-4  # OGBench's GCBC

    def summary_rows(self, last: dict[str, float]) -> list[tuple[str, str]]:
        return [("actor", f"log-likelihood {last['actor/log_prob']:.3f}")]

    def __init__(self, config: GCBCConfig, axis_name: str | None = None):
        self.config = c = config
        self.axis_name = axis_name
        self.actor = Actor(action_size=c.action_size, **c.actor_network())
        self.actor_optimizer = adam(c.actor_lr, c.max_grad_norm, c.hyperspherical)

    def init(self, key: jax.Array) -> GCBCState:
        c = self.config
        actor_params = self.actor.init(key, jnp.zeros((1, c.state_size + c.goal_size)))
        return GCBCState(actor_params=actor_params, **self.fresh_optimizer_states(actor=actor_params))

    def param_groups(self, state: GCBCState) -> dict[str, Any]:
        return {"actor": state.actor_params}

    def actor_loss(self, actor_params: Any, batch: Batch):
        mean, log_std = self.actor.apply(actor_params, jnp.concatenate([batch.obs, batch.goal], axis=-1))
        log_prob = tanh_gaussian_log_prob(mean, log_std, batch.action)
        loss = -jnp.mean(log_prob)
        return loss, {
            "actor/loss": loss,
            "actor/log_prob": -loss,
            "actor/mse": jnp.mean(jnp.sum(jnp.square(deterministic_action(mean) - batch.action), axis=-1)),
            "actor/std": jnp.mean(jnp.exp(log_std)),
        }

    def update(self, state: GCBCState, batch: Batch, key: jax.Array) -> tuple[GCBCState, dict[str, jax.Array]]:
        """One SGD step of maximum likelihood on the relabelled batch (`key` is unused: the loss has no noise)."""
        del key
        (_, metrics), grads = jax.value_and_grad(self.actor_loss, has_aux=True)(state.actor_params, batch)
        grads = self._device_mean_of_summed(grads)
        updates, actor_opt = self.actor_optimizer.update(grads, state.actor_opt, state.actor_params)
        metrics = self._mean_over_devices(metrics)
        metrics["actor/grad_norm"] = global_norm(grads)
        return GCBCState(actor_params=optax.apply_updates(state.actor_params, updates), actor_opt=actor_opt, steps=state.steps + 1), metrics
