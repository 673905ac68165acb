"""Agents behind one interface (agents/base.py `Agent`), and the registry of their names.

    cls = get_agent("sac")                          # ConfigError naming the allowed names if unknown
    agent = build_agent(config, task)               # the agent a validated run config describes
    register_agent(MyAgent)                         # a new agent: its module, and this one line

Registered: crl (contrastive RL), sac and td3 (TD baselines), gcbc (goal-conditioned behaviour cloning).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deepcrl.agents.base import Agent, AgentState, Sampler
from deepcrl.agents.crl import CRL, CRLConfig, CRLState
from deepcrl.agents.gcbc import GCBC, GCBCConfig
from deepcrl.agents.sac import SAC, SACConfig
from deepcrl.agents.td3 import TD3, TD3Config
from deepcrl.errors import ConfigError

if TYPE_CHECKING:
    from deepcrl.config import Config
    from deepcrl.envs.base import Env

AGENTS: dict[str, type[Agent]] = {}  # --agent name -> agent class, in registration order


def register_agent(cls: type[Agent]) -> type[Agent]:
    """Make `cls` available as `--agent cls.name` (usable as a class decorator); returns it."""
    missing = [
        name
        for name in (
            "name",
            "config_class",
            "data",
            "from_run_config",
            "make_sampler",
            "init",
            "act",
            "select_action",
            "update",
            "param_groups",
            "summary_rows",
        )
        if not hasattr(cls, name)
    ]
    if missing:
        raise TypeError(f"{cls.__name__} does not implement the Agent interface (agents/base.py): missing {', '.join(missing)}")
    AGENTS[cls.name] = cls
    return cls


def unregister_agent(name: str) -> None:
    """Remove an agent registered by `register_agent` (tests that register their own)."""
    AGENTS.pop(name, None)


def agent_names() -> tuple[str, ...]:
    return tuple(AGENTS)


def get_agent(name: str) -> type[Agent]:
    """The agent class registered as `name`; ConfigError naming the allowed names otherwise."""
    if name not in AGENTS:
        raise ConfigError(f"agent={name!r} is not allowed; choose one of: {', '.join(AGENTS)}")
    return AGENTS[name]


def build_agent(config: Config, task: Env, axis_name: str | None = None) -> Agent:
    """The agent (`--agent`) a validated run config describes, for `task` (`axis_name`: the data-parallel
    mesh axis, if any)."""
    return get_agent(config.agent).from_run_config(config, task, axis_name=axis_name)


for _cls in (CRL, SAC, TD3, GCBC):
    register_agent(_cls)

__all__ = [
    "AGENTS",
    "Agent",
    "AgentState",
    "CRL",
    "CRLConfig",
    "CRLState",
    "GCBC",
    "GCBCConfig",
    "SAC",
    "SACConfig",
    "Sampler",
    "TD3",
    "TD3Config",
    "agent_names",
    "build_agent",
    "get_agent",
    "register_agent",
    "unregister_agent",
]
