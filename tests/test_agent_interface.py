"""The agent interface (agents/base.py) and the registry: every agent answers it, and a new agent defined
here, outside the package, trains through deepcrl.train and loads through load_policy after one
register_agent line."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import struct

import deepcrl
from deepcrl import agents, replay
from deepcrl.agents import AGENTS, Agent, AgentState, build_agent, get_agent, register_agent, unregister_agent
from deepcrl.build import build_task, prepare, validate
from deepcrl.checkpoints import load_policy_checkpoint
from deepcrl.config import Config
from deepcrl.dry_run import plan_run
from deepcrl.envs import POINT_ENV_NAMES, make_env
from deepcrl.errors import ConfigError
from deepcrl.networks import count_params

# ------------------------------------------------------------------ a small agent, defined outside the package


@dataclass(frozen=True)
class LinearBCConfig:
    state_size: int
    goal_size: int
    action_size: int
    learning_rate: float = 0.05  # plain SGD step size
    noise: float = 0.3  # std of the exploration noise


@struct.dataclass
class LinearBCState:
    actor_params: Any  # {"w": [S + G, A], "b": [A]}
    opt: Any
    steps: jax.Array

    def export(self) -> dict[str, Any]:
        return {"actor_params": self.actor_params}

    def watched_params(self) -> dict[str, Any]:
        return {"actor parameters": self.actor_params}


class LinearBC:
    """Goal-conditioned behaviour cloning with a linear tanh policy, fitted by mean squared error."""

    name = "linear_bc"
    config_class = LinearBCConfig
    data = "relabelled"
    prefill_uniform = True
    watched = ("actor/loss",)
    run_fields = ()
    default_learning_rate = 0.05
    best_of_k = False

    def __init__(self, config: LinearBCConfig, axis_name: str | None = None):
        self.config, self.axis_name = config, axis_name
        self.optimizer = optax.sgd(config.learning_rate)

    @classmethod
    def from_run_config(cls, config, task, axis_name=None):
        lr = cls.default_learning_rate if config.actor_lr is None else config.actor_lr
        return cls(LinearBCConfig(task.state_size, task.goal_size, task.action_size, learning_rate=lr), axis_name)

    def make_sampler(self, config, task):
        return replay.FutureGoalSampler(gamma=config.gamma)

    def init(self, key):
        c = self.config
        params = {"w": 0.01 * jax.random.normal(key, (c.state_size + c.goal_size, c.action_size)), "b": jnp.zeros(c.action_size)}
        return LinearBCState(actor_params=params, opt=self.optimizer.init(params), steps=jnp.int32(0))

    def act(self, actor_params, obs, key=None, deterministic=False):
        action = jnp.tanh(obs @ actor_params["w"] + actor_params["b"])
        if deterministic:
            return action
        return jnp.clip(action + self.config.noise * jax.random.normal(key, action.shape), -1.0, 1.0)

    def select_action(self, params, obs, key, samples):
        return self.act(params["actor_params"], obs, key, deterministic=samples == 0)

    def update(self, state, batch, key):
        def loss_fn(params):
            predicted = self.act(params, jnp.concatenate([batch.obs, batch.goal], axis=-1), deterministic=True)
            return jnp.mean(jnp.sum(jnp.square(predicted - batch.action), axis=-1))

        loss, grads = jax.value_and_grad(loss_fn)(state.actor_params)
        updates, opt = self.optimizer.update(grads, state.opt, state.actor_params)
        params = optax.apply_updates(state.actor_params, updates)
        return LinearBCState(actor_params=params, opt=opt, steps=state.steps + 1), {"actor/loss": loss}

    def param_groups(self, state):
        return {"actor": state.actor_params}

    def cost_model(self, config, num_devices):
        return None

    @classmethod
    def label(cls, config):
        return cls.name

    @classmethod
    def describe(cls, config):
        return "linear behaviour cloning"

    def summary_rows(self, last):
        return [("actor", f"squared error {last['actor/loss']:.3f}")]


@pytest.fixture
def linear_bc():
    register_agent(LinearBC)  # the one line a new agent needs
    yield LinearBC
    unregister_agent(LinearBC.name)


RUN = dict(
    env="point_open",
    agent="linear_bc",
    num_envs=16,
    unroll_length=20,
    updates_per_epoch=20,
    batch_size=64,
    buffer_size=200,
    prefill_steps=100,
    total_env_steps=16 * 20 * 6,
    num_evals=2,
    num_eval_envs=16,
    checkpoint_every=3,
    progress=False,
    tensorboard=False,
)


def test_a_new_agent_trains_through_deepcrl_train_and_load_policy(linear_bc, tmp_path):
    assert get_agent("linear_bc") is LinearBC and "linear_bc" in agents.agent_names()
    config = Config(**RUN, run_dir=str(tmp_path / "run"))
    result = deepcrl.train(config)
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert len(rows) == 2 and "actor/loss" in rows[0] and "replay/goal_offset" in rows[0]
    losses = [float(r["actor/loss"]) for r in rows]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]  # it learns from its own relabelled data
    assert (tmp_path / "run" / "state").is_dir()  # training-state checkpoints of its state pytree

    policy = deepcrl.load_policy(result.run_dir)
    _, _, agent, payload = load_policy_checkpoint(result.run_dir)
    obs = jax.random.uniform(jax.random.PRNGKey(1), (5, 6), minval=0.0, maxval=7.0)
    np.testing.assert_allclose(policy(obs), agent.act(payload["actor_params"], obs, deterministic=True), rtol=1e-6)
    assert policy(obs[0]).shape == (2,)

    plan = plan_run(config)
    assert plan.params == {"actor": 14} and plan.flops_per_update is None


def test_a_new_agent_is_validated_like_the_others(linear_bc):
    with pytest.raises(ConfigError, match="energy='dot' is not allowed with --agent linear_bc; it applies to --agent crl only"):
        validate(Config(**{**RUN, "energy": "dot"}))
    with pytest.raises(ConfigError, match="eval_action_samples=4 is not allowed with --agent linear_bc"):
        validate(Config(**{**RUN, "eval_action_samples": 4}))


def test_unknown_agents_are_refused_with_the_registered_names():
    with pytest.raises(ConfigError, match="agent='ppo' is not allowed; choose one of: crl, sac, td3, gcbc$"):
        validate(Config(agent="ppo"))
    with pytest.raises(TypeError, match="missing"):
        register_agent(type("Half", (), {"name": "half"}))
    assert "half" not in AGENTS


# ------------------------------------------------------------------ every registered agent answers the interface


@pytest.mark.parametrize("name", ["crl", "sac", "td3", "gcbc"])
def test_registered_agents_answer_the_interface(name):
    config = Config(agent=name, depth=4, width=16)
    task = build_task(config)
    agent = build_agent(config, task)
    assert isinstance(agent, Agent) and agent.name == name and isinstance(agent.config, type(agent).config_class)
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    assert isinstance(state, AgentState)
    counts = {group: count_params(tree) for group, tree in agent.param_groups(state).items()}
    # the groups partition the networks' parameters (nothing counted twice or left out)
    networks = {k: v for k, v in vars(state).items() if k.endswith("_params") and not k.startswith("target")}
    assert all(n > 0 for n in counts.values()) and sum(counts.values()) == count_params(networks)
    assert set(agent.watched) <= set(jax.eval_shape(lambda s: agent.update(s, _batch(agent, task), jax.random.PRNGKey(0))[1], state))
    assert agent.label(config).startswith(name) and agent.describe(config).startswith(name)
    assert all(field in dataclass_fields(Config) for field in agent.run_fields)


def _batch(agent, task):
    sampler = agent.make_sampler(Config(agent=agent.name), task)
    buffer = replay.init_buffer(8, 2, task.state_size, task.action_size, task.goal_size, td=agent.data == "td")
    chunk = jax.tree_util.tree_map(lambda x: jnp.zeros((8,) + x.shape[1:], x.dtype), buffer.data)
    chunk = chunk.replace(episode_id=jnp.zeros((8, 2), jnp.int32))
    return sampler(replay.insert(buffer, chunk), jax.random.PRNGKey(0), 4)[0]


def dataclass_fields(cls) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(cls)}


# ------------------------------------------------------------------ one source for each task default


@pytest.mark.parametrize("name", [n for n in POINT_ENV_NAMES if n != "point"] + ["point"])
def test_make_env_and_the_run_config_build_the_same_point_task(name):
    by_name, by_config = make_env(name), prepare(Config(env=name)).task
    settings = (
        "name",
        "max_speed",
        "episode_length",
        "goal_threshold",
        "radius",
        "cell_size",
        "train_starts",
        "train_goals",
        "start_noise",
    )
    assert {k: getattr(by_name, k) for k in settings} == {k: getattr(by_config, k) for k in settings}
    assert (by_name.max_speed, by_name.episode_length, by_name.goal_threshold) == (0.5, 100, 0.5)
