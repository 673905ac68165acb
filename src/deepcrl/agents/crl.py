"""Contrastive RL (CRL): a critic trained by classification, an actor that climbs it.

Critic (the paper's): two encoders, phi over concat(state, action) and psi over the goal, both
`repr_dim` wide; the logit f(s, a, g) = energy(phi(s, a), psi(g)) (negative L2 distance by default).
On a batch of B transitions with relabelled future goals, the B x B matrix f(s_i, a_i, g_j) is
classified with the positives on the diagonal (InfoNCE and its variants, see losses.py).

Actor (the paper's): a tanh-squashed Gaussian pi(a | s, g); loss mean(alpha log pi - f(s, a~pi, g)) on
the relabelled goals, with the entropy temperature alpha tuned towards a target entropy of
-entropy_scale x action size. One SGD step updates actor and alpha with the current critic, then the
critic, on the same minibatch. No target networks, no gradient clipping, no weight decay.

Everything here is a pure function of (static `CRL`, `CRLState` pytree, data, key).

Data parallel (`CRL(config, axis_name="data")`, called inside `shard_map` with the parameters
replicated and the batch split): each device holds b = B / D rows. The critic all-gathers the goal
representations psi (and, for the backward and symmetric losses, phi), so every row is classified
against all B goals of the global batch, exactly as on one device; the actor's Gaussian noise is drawn
for the global batch and sliced, so every row gets the noise it would get on one device. Gradients of
the replicated parameters come back summed over devices (shard_map's transpose of a replicated input),
and are divided by D: the update equals the one-device update on the global batch
(tests/test_parallel.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from deepcrl.config import Config  # the run config: the one source of the defaults agents share with it
from deepcrl import losses
from deepcrl.agents.common import CRITIC_FIELDS, TEMPERATURE_FIELDS, RelabelledAgent, TemperatureConfig, adam, global_norm, temperature_loss
from deepcrl.networks import Actor, ResidualMLP, sample_tanh_gaussian
from deepcrl.replay import Batch


@dataclass(frozen=True)
class CRLConfig(TemperatureConfig):
    entropy_scale: float = 0.5  # target entropy = -entropy_scale x action_size (the paper's 0.5)
    repr_dim: int = Config.repr_dim  # representation size of phi and psi
    energy: str = Config.energy  # logit f(s,a,g) from the two representations
    contrastive_loss: str = Config.contrastive_loss  # classification loss over the B x B logits
    logsumexp_penalty: float = Config.logsumexp_penalty  # coefficient of the logsumexp^2 regulariser
    actor_random_goals: float = Config.actor_random_goals  # fraction of the actor's rows aimed at another row's goal


@struct.dataclass
class CRLState:
    actor_params: Any  # parameters of pi(a | s, g)
    critic_params: Any  # {"sa": phi parameters, "g": psi parameters}
    log_alpha: jax.Array  # [] log of the entropy temperature
    actor_opt: Any  # Adam state of the actor
    critic_opt: Any  # Adam state of the encoders
    alpha_opt: Any  # Adam state of log alpha
    steps: jax.Array  # [] int32, SGD steps taken

    def export(self) -> dict[str, Any]:
        """What a final checkpoint keeps."""
        return {"actor_params": self.actor_params, "critic_params": self.critic_params, "log_alpha": self.log_alpha}

    def watched_params(self) -> dict[str, Any]:
        return {"critic parameters": self.critic_params, "actor parameters": self.actor_params, "log alpha": self.log_alpha}


class CRL(RelabelledAgent):
    """The networks and optimisers of one CRL agent (static), with pure init / act / update.

    `axis_name`: the mesh axis the batch is split over when `update` runs inside shard_map (None on
    one device).
    """

    name = "crl"
    config_class = CRLConfig
    prefill_uniform = False  # the initial policy collects the prefill (as in the paper's code)
    watched = ("critic/loss", "actor/loss", "alpha/loss", "critic/grad_norm", "actor/grad_norm")
    run_fields = ("repr_dim", "energy", "contrastive_loss", "logsumexp_penalty", "actor_random_goals") + TEMPERATURE_FIELDS + CRITIC_FIELDS
    default_learning_rate = 3e-4  # the paper's Adam step size
    default_entropy_scale = 0.5  # the paper's target entropy -0.5 x action size
    best_of_k = True

    def cost_model(self, config: Config, num_devices: int):
        """(analytic FLOPs per update, memory per device) from deepcrl.estimate's models of CRL's update."""
        from deepcrl import estimate

        c = self.config
        sizes = (c.state_size, c.goal_size, c.action_size)
        return estimate.update_flops(config, *sizes), estimate.estimate_memory(config, *sizes, num_devices=num_devices)

    def summary_rows(self, last: dict[str, float]) -> list[tuple[str, str]]:
        return [("critic", f"accuracy {last['critic/accuracy']:.3f}, loss {last['critic/loss']:.3f}")]

    def __init__(self, config: CRLConfig, axis_name: str | None = None):
        self.config = c = config
        self.axis_name = axis_name
        self.actor = Actor(action_size=c.action_size, **c.actor_network())
        self.sa_encoder = ResidualMLP(out_size=c.repr_dim, **c.critic_network())
        self.g_encoder = ResidualMLP(out_size=c.repr_dim, **c.critic_network())
        self.actor_optimizer = adam(c.actor_lr, c.max_grad_norm, c.hyperspherical)
        self.critic_optimizer = adam(c.critic_lr, c.max_grad_norm, c.hyperspherical)
        self.alpha_optimizer = optax.adam(c.alpha_lr)

    @property
    def value_direction(self) -> str:
        """Which way the critic's value measures, where that matters (an asymmetric energy); else ""."""
        if self.config.energy == "mrn":
            return "value -d_MRN(phi(s, a), psi(goal)): the quasimetric from (s, a) to the goal, not the way back"
        return ""

    def param_groups(self, state: CRLState) -> dict[str, Any]:
        return {"actor": state.actor_params, "phi": state.critic_params["sa"], "psi": state.critic_params["g"]}

    # ----- construction -----
    def init(self, key: jax.Array) -> CRLState:
        c = self.config
        actor_key, sa_key, g_key = jax.random.split(key, 3)
        actor_params = self.actor.init(actor_key, jnp.zeros((1, c.state_size + c.goal_size)))
        critic_params = {
            "sa": self.sa_encoder.init(sa_key, jnp.zeros((1, c.state_size + c.action_size))),
            "g": self.g_encoder.init(g_key, jnp.zeros((1, c.goal_size))),
        }
        log_alpha = jnp.zeros((), jnp.float32)
        return CRLState(
            actor_params=actor_params,
            critic_params=critic_params,
            log_alpha=log_alpha,
            **self.fresh_optimizer_states(actor=actor_params, critic=critic_params, alpha=log_alpha),
        )

    # ----- the critic -----
    def representations(self, critic_params: Any, obs: jax.Array, action: jax.Array, goal: jax.Array):
        phi = self.sa_encoder.apply(critic_params["sa"], jnp.concatenate([obs, action], axis=-1))
        psi = self.g_encoder.apply(critic_params["g"], goal)
        return phi, psi

    def critic_value(self, critic_params: Any, obs: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
        """f(s, a, g) for aligned rows: the Q-value-like score the actor maximises. [B]"""
        phi, psi = self.representations(critic_params, obs, action, goal)
        return losses.pairwise_energy(self.config.energy, phi, psi)

    def critic_loss(self, critic_params: Any, batch: Batch):
        c = self.config
        phi, psi = self.representations(critic_params, batch.obs, batch.action, batch.goal)
        # This device's rows of the global logits matrix: its state-actions against every goal.
        logits = losses.energy_matrix(c.energy, phi, self._gather(psi))
        columns = None
        if self.axis_name is not None and c.contrastive_loss in losses.COLUMN_LOSSES:
            columns = losses.energy_matrix(c.energy, self._gather(phi), psi)  # every state-action against its goals
        loss, metrics = losses.contrastive_loss(
            logits, c.contrastive_loss, c.logsumexp_penalty, offset=self._row_offset(phi.shape[0]), column_logits=columns
        )
        metrics = dict(metrics)
        metrics["critic/loss"] = loss
        metrics["critic/repr_norm_sa"] = jnp.mean(jnp.linalg.norm(phi, axis=-1))
        metrics["critic/repr_norm_g"] = jnp.mean(jnp.linalg.norm(psi, axis=-1))
        return loss, metrics

    def q_value(self, critic_params: Any, obs: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
        """The critic's score of (state, action, goal) rows, f(s, a, g); what the actor climbs. [B]"""
        return self.critic_value(critic_params, obs, action, goal)

    # ----- the actor -----
    def actor_goals(self, batch: Batch, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(the goals the actor is trained towards, the key left for its noise): each row's own future goal,
        or with probability `actor_random_goals` the next row's (a random buffer state: rows are drawn
        independently); the paper's actor (0) uses the row's own, and `key` untouched."""
        p = self.config.actor_random_goals
        if p == 0:
            return batch.goal, key
        key, mask_key = jax.random.split(key)
        mask = jax.random.bernoulli(mask_key, p, (batch.goal.shape[0], 1))
        return jnp.where(mask, jnp.roll(batch.goal, 1, axis=0), batch.goal), key

    def actor_loss(self, actor_params: Any, critic_params: Any, log_alpha: jax.Array, batch: Batch, key: jax.Array):
        goal, key = self.actor_goals(batch, key)
        batch = batch.replace(goal=goal)
        obs = jnp.concatenate([batch.obs, batch.goal], axis=-1)
        mean, log_std = self.actor.apply(actor_params, obs)
        eps = self._batch_normal(key, mean.shape, mean.dtype)  # the global batch's noise, this device's rows of it
        action, log_prob = sample_tanh_gaussian(None, mean, log_std, eps=eps)
        q = self.critic_value(critic_params, batch.obs, action, batch.goal)
        alpha = jnp.exp(log_alpha)
        loss = jnp.mean(alpha * log_prob - q)
        metrics = {
            "actor/loss": loss,
            "actor/q": jnp.mean(q),
            "actor/entropy": -jnp.mean(log_prob),
            "actor/std": jnp.mean(jnp.exp(log_std)),
        }
        return loss, (metrics, log_prob)

    def alpha_loss(self, log_alpha: jax.Array, log_prob: jax.Array):
        return temperature_loss(log_alpha, log_prob, self.config.target_entropy)

    # ----- one SGD step -----
    def gradients(self, state: CRLState, batch: Batch, key: jax.Array) -> tuple[dict[str, Any], dict[str, jax.Array]]:
        """Gradients of the actor, alpha and critic losses at `state` on one minibatch, and metrics.

        All three are taken at the same parameters: the critic loss does not depend on the actor, and
        the actor and alpha losses use the current critic. Data parallel, they are global-batch
        gradients, identical on every device.
        """
        (_, (actor_metrics, log_prob)), actor_grads = jax.value_and_grad(self.actor_loss, has_aux=True)(
            state.actor_params, state.critic_params, state.log_alpha, batch, key
        )
        (_, alpha_metrics), alpha_grad = jax.value_and_grad(self.alpha_loss, has_aux=True)(state.log_alpha, log_prob)
        (_, critic_metrics), critic_grads = jax.value_and_grad(self.critic_loss, has_aux=True)(state.critic_params, batch)
        grads = self._device_mean_of_summed({"actor": actor_grads, "alpha": alpha_grad, "critic": critic_grads})
        metrics = self._mean_over_devices({**critic_metrics, **actor_metrics, **alpha_metrics})
        metrics["critic/grad_norm"] = global_norm(grads["critic"])
        metrics["actor/grad_norm"] = global_norm(grads["actor"])
        return grads, metrics

    def update(self, state: CRLState, batch: Batch, key: jax.Array) -> tuple[CRLState, dict[str, jax.Array]]:
        """One SGD step of actor, alpha and critic (Adam) on the same minibatch; see `gradients`."""
        grads, metrics = self.gradients(state, batch, key)
        actor_updates, actor_opt = self.actor_optimizer.update(grads["actor"], state.actor_opt, state.actor_params)
        alpha_updates, alpha_opt = self.alpha_optimizer.update(grads["alpha"], state.alpha_opt, state.log_alpha)
        critic_updates, critic_opt = self.critic_optimizer.update(grads["critic"], state.critic_opt, state.critic_params)
        new_state = CRLState(
            actor_params=optax.apply_updates(state.actor_params, actor_updates),
            critic_params=optax.apply_updates(state.critic_params, critic_updates),
            log_alpha=optax.apply_updates(state.log_alpha, alpha_updates),
            actor_opt=actor_opt,
            critic_opt=critic_opt,
            alpha_opt=alpha_opt,
            steps=state.steps + 1,
        )
        return new_state, metrics
