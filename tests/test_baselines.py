"""The baselines (agents/sac.py, td3.py, gcbc.py) and hindsight relabelling (replay.sample_td).

Unit checks on tiny networks: target networks move by exactly tau per (target) update, TD targets are
built from the target networks and stop at terminal transitions, TD3 updates its actor every
`policy_delay` steps, HER's relabelled rewards agree with the relabelled goals, GCBC's likelihood is
the actor's. Then, per agent, one short seeded run on the open arena that must beat a random policy,
saved, loaded by path and resumed from a mid-run checkpoint to the same final parameters.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import deepcrl
from conftest import SMALL_RUN
from deepcrl import replay
from deepcrl.agents.gcbc import GCBC, GCBCConfig, tanh_gaussian_log_prob
from deepcrl.agents.sac import SAC, SACConfig
from deepcrl.agents.td3 import TD3, TD3Config
from deepcrl.checkpoints import load_policy_checkpoint
from deepcrl.build import build_task_and_agent, validate
from deepcrl.config import Config
from deepcrl.errors import ConfigError
from deepcrl.evaluate import make_evaluate
from deepcrl.networks import sample_tanh_gaussian
from deepcrl.loop import resume

STATE, GOAL, ACTION, B = 4, 2, 2, 32
TINY = dict(state_size=STATE, goal_size=GOAL, action_size=ACTION, actor_width=16, critic_width=16, actor_depth=4, critic_depth=4)


def _td_batch(seed: int = 0, terminal: float | None = None) -> replay.TDBatch:
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    obs = jax.random.normal(k[0], (B, STATE))
    term = (jax.random.uniform(k[4], (B,)) < 0.3).astype(jnp.float32) if terminal is None else jnp.full((B,), terminal)
    return replay.TDBatch(
        obs=obs,
        action=jax.random.uniform(k[1], (B, ACTION), minval=-1, maxval=1),
        goal=jax.random.normal(k[2], (B, GOAL)),
        next_obs=obs + 0.1 * jax.random.normal(k[3], (B, STATE)),
        reward=(jax.random.uniform(k[3], (B,)) < 0.5).astype(jnp.float32),
        terminal=term,
        relabelled=jnp.zeros((B,)),
    )


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def _perturb(tree, key, scale=0.1):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(treedef, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


# ------------------------------------------------------------------------------------- target networks


@pytest.mark.parametrize("make", [lambda: SAC(SACConfig(**TINY, tau=0.05)), lambda: TD3(TD3Config(**TINY, tau=0.05))], ids=["sac", "td3"])
def test_target_networks_move_by_exactly_tau_per_update(make, compile_fast):
    agent = make()
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    # Targets that differ from the online networks, so the step towards them is visible.
    state = state.replace(target_critic_params=_perturb(state.target_critic_params, jax.random.PRNGKey(1)))
    new, _ = jax.jit(agent.update)(state, _td_batch(), jax.random.PRNGKey(2))
    for old_t, new_t, online in zip(_leaves(state.target_critic_params), _leaves(new.target_critic_params), _leaves(new.critic_params)):
        np.testing.assert_allclose(new_t - old_t, 0.05 * (online - old_t), rtol=1e-5, atol=1e-7)
    assert any(not np.array_equal(a, b) for a, b in zip(_leaves(state.target_critic_params), _leaves(new.target_critic_params)))
    if isinstance(agent, TD3):
        for old_t, new_t, online in zip(_leaves(state.target_actor_params), _leaves(new.target_actor_params), _leaves(new.actor_params)):
            np.testing.assert_allclose(new_t - old_t, 0.05 * (online - old_t), rtol=1e-5, atol=1e-7)


def test_td3_updates_actor_and_targets_every_policy_delay_steps(compile_fast):
    agent = TD3(TD3Config(**TINY, policy_delay=2))
    update = jax.jit(agent.update)
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    history = [state]
    for i in range(3):
        state, metrics = update(state, _td_batch(i), jax.random.PRNGKey(10 + i))
        history.append(state)
        assert float(metrics["actor/updated"]) == (1.0 if i in (0, 2) else 0.0)
    changed = lambda a, b: any(not np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(b)))  # noqa: E731
    for i in range(3):  # Q-networks move every step; actor and targets on steps 1 and 3 only
        assert changed(history[i].critic_params, history[i + 1].critic_params)
        assert changed(history[i].actor_params, history[i + 1].actor_params) == (i != 1)
        assert changed(history[i].target_critic_params, history[i + 1].target_critic_params) == (i != 1)
        assert changed(history[i].target_actor_params, history[i + 1].target_actor_params) == (i != 1)


# ------------------------------------------------------------------------------------------ TD targets


def test_sac_td_target_uses_target_networks_and_stops_at_terminals(compile_fast):
    agent = SAC(SACConfig(**TINY, gamma=0.9))
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    state = state.replace(target_critic_params=_perturb(state.critic_params, jax.random.PRNGKey(1)), log_alpha=jnp.float32(np.log(0.3)))
    batch, key = _td_batch(), jax.random.PRNGKey(3)
    td_target = agent.td_target  # not jitted: compared with the same sums done by hand, op by op
    target, _ = td_target(state, batch, key)
    # by hand: the same next action (same key), the targets' min over the two Q-networks, the soft value
    next_action, next_log_prob = agent._policy_sample(state.actor_params, batch.next_obs, batch.goal, key)
    q_target = jnp.min(agent.q.apply(state.target_critic_params, batch.next_obs, next_action, batch.goal), axis=0)
    expected = batch.reward + 0.9 * (1 - batch.terminal) * (q_target - 0.3 * next_log_prob)
    np.testing.assert_allclose(target, expected, rtol=1e-5, atol=1e-6)
    # the online Q-networks play no part; the targets do
    other_online = state.replace(critic_params=_perturb(state.critic_params, jax.random.PRNGKey(4)))
    np.testing.assert_array_equal(td_target(other_online, batch, key)[0], target)
    other_target = state.replace(target_critic_params=_perturb(state.target_critic_params, jax.random.PRNGKey(5)))
    assert not np.allclose(td_target(other_target, batch, key)[0], target)
    # terminal transitions: the reward alone
    terminal = np.asarray(batch.terminal) > 0
    assert terminal.any() and (~terminal).any()
    np.testing.assert_array_equal(np.asarray(target)[terminal], np.asarray(batch.reward)[terminal])


def test_td3_td_target_uses_target_networks_smoothing_and_stops_at_terminals(compile_fast):
    agent = TD3(TD3Config(**TINY, gamma=0.9, policy_noise=0.2, noise_clip=0.3))
    state = jax.jit(agent.init)(jax.random.PRNGKey(0))
    state = state.replace(
        target_critic_params=_perturb(state.critic_params, jax.random.PRNGKey(1)),
        target_actor_params=_perturb(state.actor_params, jax.random.PRNGKey(2)),
    )
    batch, key = _td_batch(), jax.random.PRNGKey(3)
    td_target = agent.td_target  # not jitted: compared with the same sums done by hand, op by op
    target, _ = td_target(state, batch, key)
    mu = agent.policy(state.target_actor_params, jnp.concatenate([batch.next_obs, batch.goal], -1))
    noise = jnp.clip(0.2 * jax.random.normal(key, mu.shape), -0.3, 0.3)
    next_action = jnp.clip(mu + noise, -1, 1)
    q_target = jnp.min(agent.q.apply(state.target_critic_params, batch.next_obs, next_action, batch.goal), axis=0)
    np.testing.assert_allclose(target, batch.reward + 0.9 * (1 - batch.terminal) * q_target, rtol=1e-5, atol=1e-6)
    for field in ("critic_params", "actor_params"):  # online networks play no part
        other = state.replace(**{field: _perturb(getattr(state, field), jax.random.PRNGKey(4))})
        np.testing.assert_array_equal(td_target(other, batch, key)[0], target)
    for field in ("target_critic_params", "target_actor_params"):
        other = state.replace(**{field: _perturb(getattr(state, field), jax.random.PRNGKey(5))})
        assert not np.allclose(td_target(other, batch, key)[0], target)
    all_terminal = _td_batch(terminal=1.0)
    np.testing.assert_array_equal(td_target(state, all_terminal, key)[0], all_terminal.reward)


# ----------------------------------------------------------------------------------------------- HER

T, N_ENVS, EPISODE = 40, 3, 10


def _her_buffer() -> replay.ReplayBuffer:
    """3 environments x 40 steps, episodes of 10 steps; the achieved goal of step t in env e is (t, 10 e),
    so goals 1 apart never lie within a 0.5 threshold of each other; commanded goals are (-1, episode)."""
    t = jnp.arange(T, dtype=jnp.float32)[:, None] * jnp.ones((1, N_ENVS))
    e = jnp.ones((T, 1)) * jnp.arange(N_ENVS, dtype=jnp.float32)[None]
    episode = (jnp.arange(T) // EPISODE)[:, None] * jnp.ones((1, N_ENVS), jnp.int32)
    chunk = replay.Transition(
        obs=jnp.stack([t, e, t, e], -1),
        action=jnp.zeros((T, N_ENVS, ACTION)),
        next_achieved=jnp.stack([t, 10 * e], -1),
        episode_id=episode.astype(jnp.int32),
        goal=jnp.stack([-jnp.ones((T, N_ENVS)), episode.astype(jnp.float32)], -1),
        next_obs=jnp.stack([t + 1, e, t, e], -1),
        terminated=(t % 7 == 3).astype(jnp.float32),
    )
    return replay.insert(replay.init_buffer(64, N_ENVS, 4, ACTION, GOAL, td=True), chunk)


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_her_relabels_with_future_states_and_rewards_agree_with_the_goals(fraction):
    buffer = _her_buffer()
    batch = jax.jit(lambda k: replay.sample_td(buffer, k, 4000, her_fraction=fraction, threshold=0.5))(jax.random.PRNGKey(0))
    t, e = np.asarray(batch.obs[:, 0]), np.asarray(batch.obs[:, 1])
    goal, relabelled = np.asarray(batch.goal), np.asarray(batch.relabelled) > 0
    assert abs(relabelled.mean() - fraction) < 0.03
    # relabelled goals: the achieved goal of a later step (t + 1 .. end) of the same episode and env
    g_t, g_e = goal[relabelled, 0], goal[relabelled, 1] / 10
    episode_end = (t[relabelled] // EPISODE + 1) * EPISODE - 1
    assert (g_e == e[relabelled]).all()
    assert ((g_t >= t[relabelled]) & (g_t <= episode_end)).all()
    if fraction == 1.0:  # uniform over the episode's remaining steps: the last step is reachable too
        assert (g_t == episode_end).any() and (g_t == t[relabelled]).any()
    # other rows keep the commanded goal
    np.testing.assert_array_equal(goal[~relabelled], np.stack([-np.ones((~relabelled).sum()), t[~relabelled] // EPISODE], -1))
    # rewards are recomputed from the goal each row ends up with: 1 exactly when the next state achieves it
    next_achieved = np.stack([t, 10 * e], -1)
    expected = (np.linalg.norm(next_achieved - goal, axis=-1) < 0.5).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(batch.reward), expected)
    if fraction > 0:
        assert 0 < expected[relabelled].mean() < 1
    assert (expected[~relabelled] == 0).all()
    # the next state and the failure flag are the transition's own
    np.testing.assert_array_equal(np.asarray(batch.next_obs[:, 0]), t + 1)
    np.testing.assert_array_equal(np.asarray(batch.terminal), (t % 7 == 3).astype(np.float32))


def test_her_goal_terminal_and_dense_rewards():
    buffer = _her_buffer()
    key = jax.random.PRNGKey(1)
    sparse = replay.sample_td(buffer, key, 2000, her_fraction=1.0, threshold=0.5, goal_terminal=True)
    reached = np.asarray(sparse.reward)
    t = np.asarray(sparse.obs[:, 0])
    np.testing.assert_array_equal(np.asarray(sparse.terminal), np.maximum(reached, (t % 7 == 3).astype(np.float32)))
    dense = replay.sample_td(buffer, key, 2000, her_fraction=1.0, threshold=0.5, reward="dense")
    np.testing.assert_array_equal(np.asarray(dense.goal), np.asarray(sparse.goal))  # same key, same rows and goals
    next_achieved = np.stack([t, 10 * np.asarray(sparse.obs[:, 1])], -1)
    np.testing.assert_allclose(np.asarray(dense.reward), -np.linalg.norm(next_achieved - np.asarray(dense.goal), axis=-1), rtol=1e-6)


# ----------------------------------------------------------------------------------------------- GCBC


def test_gcbc_likelihood_is_the_actors_and_an_update_raises_it(compile_fast):
    agent = GCBC(GCBCConfig(**TINY, actor_lr=1e-2))
    state = agent.init(jax.random.PRNGKey(0))
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    obs = jax.random.normal(k1, (B, STATE + GOAL))
    mean, log_std = agent.actor.apply(state.actor_params, obs)
    action, log_prob = sample_tanh_gaussian(k2, mean, log_std)
    np.testing.assert_allclose(tanh_gaussian_log_prob(mean, log_std, action), log_prob, rtol=1e-4, atol=1e-4)
    batch = replay.Batch(obs=obs[:, :STATE], action=jnp.clip(0.8 * action, -1, 1), goal=obs[:, STATE:], offset=jnp.ones((B,), jnp.int32))
    update = jax.jit(agent.update)
    first = None
    for i in range(20):
        state, metrics = update(state, batch, jax.random.PRNGKey(i))
        first = float(metrics["actor/log_prob"]) if first is None else first
    assert float(metrics["actor/log_prob"]) > first + 1.0


# --------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(agent="crl", her=True), "her=True is not allowed with --agent crl; it applies to --agent sac or --agent td3 only"),
        (dict(agent="sac", policy_delay=3), "policy_delay=3 is not allowed with --agent sac; it applies to --agent td3 only"),
        (dict(agent="gcbc", critic_depth=8), "critic_depth=8 is not allowed with --agent gcbc"),
        (dict(agent="td3", energy="dot"), "energy='dot' is not allowed with --agent td3; it applies to --agent crl only"),
        (dict(agent="ppo"), "agent='ppo' is not allowed; choose one of: crl, sac, td3, gcbc"),
        (dict(agent="sac", reward="shaped"), "reward='shaped' is not allowed; choose one of: sparse, dense"),
        (dict(agent="sac", her=True, her_fraction=1.5), "her_fraction=1.5 is not allowed; it must lie in [0, 1]"),
        (dict(agent="td3", tau=0.0), "tau=0.0 is not allowed; it must lie in (0, 1]"),
        (dict(agent="sac", her_fraction=0.5), "her_fraction=0.5 is not allowed without --her"),
    ],
)
def test_agent_settings_are_checked(overrides, message):
    with pytest.raises(
        ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")
    ):
        validate(Config(**overrides))


def test_agent_defaults_resolve_per_agent():
    def built(**overrides):  # the agent's own config, as the run builds it
        return build_task_and_agent(Config(**overrides))[1].config

    assert (built(agent="td3").actor_lr, built(agent="sac").actor_lr) == (1e-3, 3e-4)
    assert (built(agent="crl").entropy_scale, built(agent="sac").entropy_scale) == (0.5, 1.0)
    assert built(agent="sac", actor_lr=1e-4).actor_lr == 1e-4


# ------------------------------------------------------- short runs: learn, save, load, resume (per agent)

# Each agent's settings on SMALL_RUN's open arena. These are learning tests, so each run must learn on
# every seed, not on most: with SMALL_RUN's 20 SGD steps per epoch SAC+HER, TD3+HER and GCBC each
# failed on 2 to 5 of 6 seeds (6 seeds in one program stand in for the rounding differences between
# machines, which decided whether the single seed of the test passed). With 80 SGD steps per epoch
# (4,800 in all), TD3's preactivation penalty against tanh saturation (HER's DDPG recipe) and GCBC at
# CRL's test learning rate, every one of 6 seeds beat the random policy by the margins asserted below
# (docs/long_horizons.md, "Flaky learning tests").
AGENT_RUNS = {
    "sac": dict(agent="sac", her=True, updates_per_epoch=80),
    "td3": dict(agent="td3", her=True, updates_per_epoch=80, preactivation_penalty=1.0),
    "gcbc": dict(agent="gcbc", updates_per_epoch=80, actor_lr=1e-3),
}


def _agent_config(name: str, run_dir: Path, **overrides) -> Config:
    settings = {
        **SMALL_RUN,
        "entropy_scale": None,
        "actor_lr": None,
        "critic_lr": None,
        "alpha_lr": 3e-4,
        "checkpoint_every": 30,
        **AGENT_RUNS[name],
        **overrides,
        "run_dir": str(run_dir),
    }
    if name != "crl":
        for field in ("energy", "contrastive_loss", "logsumexp_penalty", "repr_dim"):
            settings.pop(field, None)
    if name == "gcbc":
        settings.pop("alpha_lr")
    return Config(**settings)


def _random_policy(obs):
    return jax.random.uniform(jax.random.PRNGKey(0), (obs.shape[0], 2), minval=-1.0, maxval=1.0)


# Each agent's run is trained once per test session: its tests share one pytest-xdist group (one worker).
@pytest.fixture(scope="module", params=[pytest.param(name, marks=pytest.mark.xdist_group(f"baseline-{name}")) for name in AGENT_RUNS])
def agent_run(request, tmp_path_factory):
    name = request.param
    config = _agent_config(name, tmp_path_factory.mktemp(name) / "run")
    return name, config, deepcrl.train(config)


def test_each_agent_beats_a_random_policy_on_the_open_arena(agent_run):
    name, config, result = agent_run
    env = deepcrl.build.build_task(config)
    evaluate = make_evaluate(env, config.num_eval_envs)
    policy = deepcrl.load_policy(config.run_dir)  # loaded from the path alone
    key = jax.random.PRNGKey(2024)
    trained, random = jax.device_get(jax.jit(lambda k: (evaluate(policy, k), evaluate(_random_policy, k)))(key))
    assert float(trained["eval/success"]) >= float(random["eval/success"]) + 0.3, (name, trained, random)
    assert float(trained["eval/time_at_goal"]) > float(random["eval/time_at_goal"]) + 3.0, (name, trained, random)
    assert float(trained["eval/final_distance"]) < float(random["eval/final_distance"]) - 1.0, (name, trained, random)


def test_each_agent_checkpoint_loads_with_its_config(agent_run):
    name, config, _ = agent_run
    loaded_config, env, agent, payload = load_policy_checkpoint(config.run_dir)
    assert loaded_config.agent == name and type(agent).__name__.lower() == name
    expected = {"sac": {"actor_params", "critic_params", "log_alpha"}, "td3": {"actor_params", "critic_params"}, "gcbc": {"actor_params"}}[
        name
    ]
    assert set(payload) == expected
    assert json.loads((Path(config.run_dir) / "checkpoint" / "config.json").read_text())["agent"] == name


def test_each_agent_resumes_to_the_same_run(agent_run, tmp_path):
    """Resume a copy of the run from its own epoch-30 training state (of 60): the same final parameters and metrics."""
    import shutil

    name, config, result = agent_run
    copy = tmp_path / "copy"
    shutil.copytree(config.run_dir, copy)
    shutil.rmtree(copy / "checkpoint")
    kept = sorted(p.name for p in (copy / "state").iterdir())
    assert "epoch_00000030" in kept, kept
    for path in (copy / "state").iterdir():
        if path.name != "epoch_00000030":
            shutil.rmtree(path)
    resumed = resume(copy)
    assert resumed.history[-1]["epoch"] == config.num_epochs
    final = {k: v for k, v in result.history[-1].items() if k != "time_s"}
    again = {k: v for k, v in resumed.history[-1].items() if k != "time_s"}
    assert again == final, name
    original = (Path(config.run_dir) / "checkpoint" / "agent.msgpack").read_bytes()
    assert (copy / "checkpoint" / "agent.msgpack").read_bytes() == original


@pytest.fixture(scope="module", params=[pytest.param(name, marks=pytest.mark.xdist_group(f"dense-{name}")) for name in ("sac", "td3")])
def dense_run(request, tmp_path_factory):
    name = request.param
    config = _agent_config(name, tmp_path_factory.mktemp(f"{name}-dense") / "run", her=False, reward="dense", checkpoint_every=0)
    return name, config, deepcrl.train(config)


def test_sac_and_td3_learn_a_dense_reward_on_the_open_arena(dense_run):
    """The TD machinery on its own (no sparse goals, no relabelling): reward = minus the distance to the goal."""
    name, config, result = dense_run
    env = deepcrl.build.build_task(config)
    evaluate = make_evaluate(env, config.num_eval_envs)
    key = jax.random.PRNGKey(2024)
    trained, random = jax.device_get(
        jax.jit(lambda k: (evaluate(deepcrl.load_policy(config.run_dir), k), evaluate(_random_policy, k)))(key)
    )
    assert float(trained["eval/final_distance"]) < 0.5 * float(random["eval/final_distance"]), (name, trained, random)
    assert float(trained["eval/success"]) >= float(random["eval/success"]) + 0.3, (name, trained, random)
    assert result.history[-1]["replay/reward"] > result.history[0]["replay/reward"]  # the collected data gets closer to the goals


@pytest.mark.parametrize(
    "agent, groups", [("crl", ["actor", "phi", "psi"]), ("sac", ["actor", "q (x2)"]), ("td3", ["actor", "q (x2)"]), ("gcbc", ["actor"])]
)
def test_dry_run_counts_each_agents_networks(agent, groups):
    from deepcrl.dry_run import plan_run

    plan = plan_run(Config(agent=agent, depth=8, width=64))
    assert list(plan.params) == groups
    assert (plan.memory is None) == (agent != "crl")
    if agent in ("sac", "td3"):  # two Q-networks over (state, action, goal) -> 1, depth 8 width 64, point maze sizes
        assert plan.params["q (x2)"] == 2 * (8 * 64 + 64 + 128 + 8 * (64 * 64 + 64 + 128) + 64 + 1)
