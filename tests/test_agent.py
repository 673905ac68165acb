"""The CRL agent's pure functions: init, act, the three losses and one SGD step (the paper's critic and actor)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from deepcrl import losses
from deepcrl.agents.crl import CRL, CRLConfig, CRLState
from deepcrl.replay import Batch

STATE, GOAL, ACTION, B = 4, 2, 2, 32
# Small programs run once each: skip the slow XLA optimisations when compiling them.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
TINY = dict(
    state_size=STATE, goal_size=GOAL, action_size=ACTION, actor_width=16, critic_width=16, repr_dim=8, actor_depth=4, critic_depth=4
)


def _batch(seed: int = 0) -> Batch:
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    obs = jax.random.normal(k1, (B, STATE))
    return Batch(
        obs=obs,
        action=jax.random.uniform(k2, (B, ACTION), minval=-1, maxval=1),
        goal=obs[:, :GOAL] + 0.3 * jax.random.normal(k3, (B, GOAL)),
        offset=jnp.ones((B,), jnp.int32),
    )


def _leaves_differ(a, b) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.fixture(scope="module")
def agent() -> CRL:
    return CRL(CRLConfig(**TINY))


@pytest.fixture(scope="module")
def probe(agent):
    """Everything the tests inspect, from one compiled program: init, act, one update and a by-hand update."""

    def run(key, batch):
        init_key, act_key, update_key = jax.random.split(key, 3)
        state = agent.init(init_key)
        policy_obs = jnp.concatenate([batch.obs, batch.goal], -1)
        mean, log_std = agent.actor.apply(state.actor_params, policy_obs)
        acts = {
            "deterministic": agent.act(state.actor_params, policy_obs, deterministic=True),
            "tanh_mean": jnp.tanh(mean),
            "sampled_a": agent.act(state.actor_params, policy_obs, act_key),
            "sampled_a_again": agent.act(state.actor_params, policy_obs, act_key),
            "sampled_b": agent.act(state.actor_params, policy_obs, jax.random.fold_in(act_key, 1)),
        }
        phi, psi = agent.representations(state.critic_params, batch.obs, batch.action, batch.goal)
        new_state, metrics = agent.update(state, batch, update_key)

        # The same step by hand, in the documented order: actor and alpha on the *current* critic,
        # then the critic from its own loss only.
        actor_grads, (_, log_prob) = jax.grad(agent.actor_loss, has_aux=True)(
            state.actor_params, state.critic_params, state.log_alpha, batch, update_key
        )
        upd, _ = agent.actor_optimizer.update(actor_grads, state.actor_opt, state.actor_params)
        want_actor = optax.apply_updates(state.actor_params, upd)
        alpha_grad, _ = jax.grad(agent.alpha_loss, has_aux=True)(state.log_alpha, log_prob)
        upd, _ = agent.alpha_optimizer.update(alpha_grad, state.alpha_opt, state.log_alpha)
        want_log_alpha = optax.apply_updates(state.log_alpha, upd)
        critic_grads, _ = jax.grad(agent.critic_loss, has_aux=True)(state.critic_params, batch)
        upd, _ = agent.critic_optimizer.update(critic_grads, state.critic_opt, state.critic_params)
        want_critic = optax.apply_updates(state.critic_params, upd)
        # The actor loss does depend on the critic: this gradient exists but must never be applied.
        actor_to_critic = jax.grad(lambda cp: agent.actor_loss(state.actor_params, cp, state.log_alpha, batch, update_key)[0])(
            state.critic_params
        )
        return dict(
            state=state,
            new_state=new_state,
            metrics=metrics,
            acts=acts,
            phi=phi,
            psi=psi,
            mean=mean,
            log_std=log_std,
            want_actor=want_actor,
            want_critic=want_critic,
            want_log_alpha=want_log_alpha,
            actor_to_critic=actor_to_critic,
            critic_grads=critic_grads,
        )

    return jax.device_get(jax.jit(run, compiler_options=FAST_COMPILE)(jax.random.PRNGKey(0), _batch()))


def test_init_shapes(probe):
    state: CRLState = probe["state"]
    actor, critic = state.actor_params["params"], state.critic_params
    assert actor["trunk"]["input_dense"]["kernel"].shape == (STATE + GOAL, 16)
    assert actor["trunk"]["blocks"]["dense_0"]["kernel"].shape == (1, 16, 16)
    assert actor["mean"]["kernel"].shape == (16, ACTION)
    assert actor["log_std"]["kernel"].shape == (16, ACTION)
    assert critic["sa"]["params"]["input_dense"]["kernel"].shape == (STATE + ACTION, 16)
    assert critic["sa"]["params"]["head"]["kernel"].shape == (16, 8)
    assert critic["g"]["params"]["input_dense"]["kernel"].shape == (GOAL, 16)
    assert critic["g"]["params"]["head"]["kernel"].shape == (16, 8)
    assert float(state.log_alpha) == 0.0 and np.shape(state.log_alpha) == ()
    assert int(state.steps) == 0
    assert probe["phi"].shape == (B, 8) and probe["psi"].shape == (B, 8)
    assert probe["mean"].shape == (B, ACTION) and probe["log_std"].shape == (B, ACTION)
    # Zero biases at init; phi and psi are separate networks with different weights.
    assert np.all(critic["sa"]["params"]["input_dense"]["bias"] == 0)
    assert not np.array_equal(critic["sa"]["params"]["head"]["kernel"], critic["g"]["params"]["head"]["kernel"])
    assert np.all(probe["log_std"] >= -5.0) and np.all(probe["log_std"] <= 2.0)


def test_deterministic_act_is_tanh_mean_and_sampling_uses_the_key(probe):
    acts = probe["acts"]
    np.testing.assert_allclose(acts["deterministic"], acts["tanh_mean"], rtol=1e-6, atol=1e-7)
    assert acts["deterministic"].shape == (B, ACTION)
    for name in ("sampled_a", "sampled_b"):
        assert acts[name].shape == (B, ACTION)
        assert np.all(np.abs(acts[name]) <= 1.0)
    np.testing.assert_array_equal(acts["sampled_a"], acts["sampled_a_again"])
    assert not np.allclose(acts["sampled_a"], acts["sampled_b"])
    assert not np.allclose(acts["sampled_a"], acts["deterministic"])


def test_update_moves_every_parameter_group_and_counts(probe):
    old, new = probe["state"], probe["new_state"]
    assert _leaves_differ(old.actor_params, new.actor_params)
    assert _leaves_differ(old.critic_params["sa"], new.critic_params["sa"])
    assert _leaves_differ(old.critic_params["g"], new.critic_params["g"])
    assert float(new.log_alpha) != float(old.log_alpha)
    assert int(new.steps) == 1
    assert _leaves_differ(old.actor_opt, new.actor_opt) and _leaves_differ(old.critic_opt, new.critic_opt)


def test_update_metrics_are_finite_and_namespaced(probe):
    metrics = probe["metrics"]
    expected = {
        "critic/loss",
        "critic/accuracy",
        "critic/repr_norm_sa",
        "critic/repr_norm_g",
        "critic/grad_norm",
        "actor/loss",
        "actor/q",
        "actor/entropy",
        "actor/std",
        "actor/grad_norm",
        "alpha/loss",
        "alpha/value",
    }
    assert expected <= set(metrics)
    for name, value in metrics.items():
        assert name.split("/")[0] in ("critic", "actor", "alpha"), name
        assert np.shape(value) == () and np.isfinite(value), (name, value)
    assert float(metrics["alpha/value"]) == pytest.approx(1.0)  # exp(log_alpha) before the step
    assert 0.0 <= float(metrics["critic/accuracy"]) <= 1.0
    assert float(metrics["critic/grad_norm"]) > 0 and float(metrics["actor/grad_norm"]) > 0


def _norm(tree) -> float:
    return float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree_util.tree_leaves(tree))))


def _assert_trees_close(got, want, rtol=1e-5, atol=1e-6):
    got_leaves, got_def = jax.tree_util.tree_flatten(got)
    want_leaves, want_def = jax.tree_util.tree_flatten(want)
    assert got_def == want_def
    for g, w in zip(got_leaves, want_leaves):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def test_update_order_actor_then_critic_no_actor_gradient_in_critic(probe):
    new = probe["new_state"]
    # The critic moved by its own contrastive gradient only ...
    _assert_trees_close(new.critic_params, probe["want_critic"])
    # ... although the actor loss has a real gradient with respect to the critic (not applied).
    assert _norm(probe["actor_to_critic"]) > 1e-3 * _norm(probe["critic_grads"])
    # The actor and alpha moved by gradients computed with the critic as it was before the step.
    _assert_trees_close(new.actor_params, probe["want_actor"])
    np.testing.assert_allclose(new.log_alpha, probe["want_log_alpha"], rtol=1e-6)


def test_alpha_moves_towards_the_target_entropy(probe):
    # d/d log_alpha of alpha * (-log pi - H): log_alpha falls when the policy's entropy exceeds the target.
    metrics, old, new = probe["metrics"], probe["state"], probe["new_state"]
    target = -0.5 * ACTION
    direction = np.sign(float(new.log_alpha) - float(old.log_alpha))
    assert direction == -np.sign(float(metrics["actor/entropy"]) - target)


# Every energy and every contrastive loss, each in one agent (the default pair is covered above).
VARIANTS = [("l2_sq", "bwd_infonce"), ("l1", "sym_infonce"), ("dot", "binary_nce"), ("cosine", "fwd_infonce")]


def test_variant_names_cover_every_energy_and_loss():
    # mrn needs repr_dim 32 (other parameter shapes than the probe's): it trains in tests/test_appendix_critics.py
    assert {e for e, _ in VARIANTS} | {"l2", "mrn"} == set(losses.ENERGY_NAMES)
    assert {loss for _, loss in VARIANTS} == set(losses.LOSS_NAMES)


def test_every_energy_and_loss_runs_one_finite_update(probe):
    agents = [CRL(CRLConfig(**TINY, energy=e, contrastive_loss=loss)) for e, loss in VARIANTS]
    batch = _batch(1)

    def run(state, key):  # energy and loss do not change parameter shapes: start from the probe's state
        out = []
        for agent in agents:
            new_state, metrics = agent.update(state, batch, key)
            moved = optax.tree.norm(jax.tree_util.tree_map(lambda a, b: a - b, new_state.critic_params, state.critic_params))
            out.append((metrics, moved))
        return out

    results = jax.device_get(jax.jit(run, compiler_options=FAST_COMPILE)(probe["state"], jax.random.PRNGKey(2)))
    for (energy, loss), (metrics, moved) in zip(VARIANTS, results):
        for name in ("critic/loss", "actor/loss", "alpha/loss", "critic/grad_norm"):
            assert np.isfinite(metrics[name]), (energy, loss, name, metrics[name])
        assert float(moved) > 0, (energy, loss)


def test_actor_random_goals_aims_that_fraction_of_rows_at_another_rows_goal():
    batch, key = _batch(3), jax.random.PRNGKey(4)
    paper = CRL(CRLConfig(**TINY))
    goal, left = paper.actor_goals(batch, key)
    assert goal is batch.goal and left is key  # the paper's actor: its own future goals, the key untouched
    every = CRL(CRLConfig(**TINY, actor_random_goals=1.0))
    goal, _ = every.actor_goals(batch, key)
    np.testing.assert_array_equal(np.asarray(goal), np.roll(np.asarray(batch.goal), 1, axis=0))
    half = CRL(CRLConfig(**TINY, actor_random_goals=0.5))
    goal, _ = half.actor_goals(batch, key)
    moved = np.any(np.asarray(goal) != np.asarray(batch.goal), axis=1)
    assert 0 < moved.sum() < len(moved)
