"""From a run config to its task and agent: validate once, build the task once.

    setup = prepare(config)          # every check (ConfigError, one line), and the task, built once
    agent = setup.build_agent()      # the agent for the task's sizes (per mesh axis, if data parallel)

`validate(config)` is `prepare` without keeping the result. The CLI and the Python API call `prepare`
at the boundary and hand the `Setup` on: the trainer, the dry run and checkpoint loading take it and
never validate or build the task again.

What is checked here beyond `config.check_fields` (types and ranges): the agent's name (the registry
in deepcrl.agents), the settings only other agents read (each agent's `run_fields`), best-of-K action
selection (agents with `best_of_k`), the choice lists of the modules that own them (replay rewards,
network activations and matmul dtypes, CRL energies and losses, point-maze start and goal
distributions), and what needs the task: its name, layout and options (envs.make_env) and its episode
length against the buffer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from deepcrl import agents, losses, networks, replay
from deepcrl.config import Config, check_fields
from deepcrl.envs import make_env
from deepcrl.envs.base import Env
from deepcrl.envs.point_maze import TRAIN_GOALS, TRAIN_STARTS
from deepcrl.errors import ConfigError

# Config fields that are options of the task (None: the task's own default, declared by its class).
TASK_FIELDS = (
    "episode_length",
    "max_speed",
    "goal_threshold",
    "train_starts",
    "train_goals",
    "train_max_goal_cells",
    "eval_max_goal_cells",
)


@dataclass(frozen=True)
class Setup:
    """A validated run config with its task, built once."""

    config: Config
    task: Env
    agent_class: type

    def build_agent(self, axis_name: str | None = None) -> agents.Agent:
        return self.agent_class.from_run_config(self.config, self.task, axis_name=axis_name)

    def replace(self, **changes) -> Setup:
        """The same task with config fields changed that do not change the task (run_dir, progress, ...)."""
        return dataclasses.replace(self, config=dataclasses.replace(self.config, **changes))


def build_task(config: Config) -> Env:
    """The task a config names, with the task's own defaults for the settings left unset (None).

    Raises ConfigError for unknown names, bad layouts and options the task does not take.
    """
    return make_env(config.env, layout=config.layout, **{name: getattr(config, name) for name in TASK_FIELDS})


def _choice(name: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of: {', '.join(allowed)}")


def check_agent_fields(config: Config, agent_class: type) -> None:
    """ConfigError if a setting that only other agents read differs from its default, or best-of-K
    action selection is asked of an agent without a critic and a stochastic policy."""
    c = config
    for name in ("explore_action_samples", "eval_action_samples"):
        value = getattr(c, name)
        if value >= 2 and not agent_class.best_of_k:
            able = " or ".join(f"--agent {n}" for n, cls in agents.AGENTS.items() if cls.best_of_k)
            raise ConfigError(
                f"{name}={value!r} is not allowed with --agent {c.agent}; the best of K samples needs a critic and a stochastic policy ({able}); use 0 or 1"
            )
    defaults = Config()
    owned = {field for cls in agents.AGENTS.values() for field in cls.run_fields}
    for field in dataclasses.fields(Config):
        name = field.name
        if name in owned and name not in agent_class.run_fields and getattr(c, name) != getattr(defaults, name):
            users = " or ".join(f"--agent {n}" for n, cls in agents.AGENTS.items() if name in cls.run_fields)
            raise ConfigError(f"{name}={getattr(c, name)!r} is not allowed with --agent {c.agent}; it applies to {users} only")
    if not c.her and c.her_fraction != defaults.her_fraction:
        raise ConfigError(f"her_fraction={c.her_fraction!r} is not allowed without --her; add --her to relabel goals")


def check_choices(config: Config) -> None:
    """Each choice-list field against the list its owner declares."""
    c = config
    _choice("reward", c.reward, replay.REWARD_KINDS)
    _choice("activation", c.activation, networks.ACTIVATIONS)
    _choice("normalization", c.normalization, networks.NORMALIZATIONS)
    _choice("energy", c.energy, losses.ENERGY_NAMES)
    _choice("contrastive_loss", c.contrastive_loss, losses.LOSS_NAMES)
    if c.energy == "mrn" and c.repr_dim % (2 * losses.MRN_COMPONENTS):
        raise ConfigError(
            f"repr_dim={c.repr_dim} is not allowed with energy='mrn'; it must be a multiple of {2 * losses.MRN_COMPONENTS} "
            f"({losses.MRN_COMPONENTS} components, each split in two halves)"
        )
    if c.train_starts is not None:
        _choice("train_starts", c.train_starts, TRAIN_STARTS)
    if c.train_goals is not None:
        _choice("train_goals", c.train_goals, TRAIN_GOALS)
    _choice("matmul_dtype", c.matmul_dtype, tuple(networks.MATMUL_DTYPES))


def check_task(config: Config, task: Env) -> None:
    """What the run's sizes need of the task: the buffer holds a whole episode (relabelling)."""
    c = config
    if c.buffer_size < task.episode_length:
        raise ConfigError(
            f"buffer_size={c.buffer_size} is smaller than episode_length={task.episode_length} (env {c.env}); the buffer must hold a whole episode for relabelling, raise --buffer-size"
        )


def prepare(config: Config) -> Setup:
    """Check every field and combination, build the task once; ConfigError (one line) on the first problem."""
    if isinstance(config, Setup):
        return config
    if not isinstance(config, Config):
        raise ConfigError(f"expected a deepcrl.Config, got {type(config).__name__}")
    check_fields(config)
    agent_class = agents.get_agent(config.agent)
    check_agent_fields(config, agent_class)
    check_choices(config)
    task = build_task(config)  # unknown env / layout / bad maze file / bad task options raise ConfigError here
    check_task(config, task)
    return Setup(config=config, task=task, agent_class=agent_class)


def learner_setup(setup: Setup) -> Setup | None:
    """The collector / learner split's learner (None without --learner-depth): the run's agent and task
    with the learner's networks, depth `learner_depth` and width `learner_width` (default --width) for
    both actor and critic. It shares the run's task and buffer and never collects."""
    c = setup.config
    if c.learner_depth is None:
        return None
    networks_only = dict(depth=c.learner_depth, actor_depth=None, critic_depth=None, width=c.learner_width or c.width)
    learner = dataclasses.replace(c, **networks_only, actor_width=None, critic_width=None, learner_depth=None, learner_width=None)
    return Setup(config=learner, task=setup.task, agent_class=setup.agent_class)


def validate(config: Config) -> None:
    """Every check of `prepare`, keeping nothing."""
    prepare(config)


def build_task_and_agent(config: Config | Setup, axis_name: str | None = None):
    """(task, agent) of a config, validated: what a tool that trains nothing needs (benchmarks, tests)."""
    setup = prepare(config)
    return setup.task, setup.build_agent(axis_name)
