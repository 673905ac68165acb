"""The agent interface: everything the rest of deepcrl may ask of an agent.

An agent is a static object (its networks and optimisers, built from a frozen config) with pure
functions over a state pytree. The trainer, the dry run, the progress summary, checkpoints and config
validation talk to agents only through `Agent` below; what differs between agents lives in the agent's
own module (agents/crl.py, sac.py, td3.py, gcbc.py). The registry (agents/__init__.py) maps names to
agent classes. Adding an agent: one module with a class implementing `Agent`, and one
`register_agent(MyAgent)` line.

    agent = get_agent("crl").from_run_config(config, task)   # or agents.build_agent(config, task)
    state = agent.init(key)
    action = agent.select_action(state.export(), obs, key, samples=1)
    batch, replay_metrics = sampler(buffer, key, batch_size)   # sampler = agent.make_sampler(config, task)
    state, metrics = agent.update(state, batch, key)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, runtime_checkable

import jax

if TYPE_CHECKING:
    from deepcrl.config import Config
    from deepcrl.envs.base import Env
    from deepcrl.estimate import MemoryEstimate
    from deepcrl.replay import ReplayBuffer

# A batch sampler: (buffer, key, batch_size) -> (batch for `update`, {"replay/...": scalar}).
Sampler = Callable[["ReplayBuffer", jax.Array, int], tuple[Any, dict[str, jax.Array]]]


@runtime_checkable
class AgentState(Protocol):
    """The pytree `init` returns and `update` carries (parameters, optimiser states, counters)."""

    def export(self) -> dict[str, Any]:
        """What a final checkpoint keeps and a policy acts with: `actor_params`, plus `critic_params`
        (and the temperature) for the agents that have them; no optimiser state."""

    def watched_params(self) -> dict[str, Any]:
        """{readable name: parameter tree} checked for NaN / Inf after every epoch."""


@runtime_checkable
class Agent(Protocol):
    """What an agent class declares and what its instances do."""

    # ----- what the class declares -----
    name: ClassVar[str]  # the --agent name
    config_class: ClassVar[type]  # its frozen config dataclass (fields: sizes, networks, optimisers, losses)
    data: ClassVar[str]  # the batches `update` consumes: "relabelled" (replay.sample) or "td" (replay.sample_td)
    prefill_uniform: ClassVar[bool]  # the buffer prefill uses uniform random actions instead of the initial policy
    watched: ClassVar[tuple[str, ...]]  # metric names checked for NaN / Inf after every epoch
    run_fields: ClassVar[tuple[str, ...]]  # Config fields that only some agents read, of them those this one reads
    default_learning_rate: ClassVar[float]  # Adam step size of actor and critic when --actor-lr / --critic-lr are unset
    best_of_k: ClassVar[bool]  # actions can be the best of K policy samples by a critic (--*-action-samples K >= 2)

    config: Any  # an instance of `config_class`
    axis_name: str | None  # the mesh axis `update` is data parallel over (None on one device)

    # ----- building it -----
    @classmethod
    def from_run_config(cls, config: Config, task: Env, axis_name: str | None = None) -> Agent:
        """The agent a validated run config describes, for `task`'s sizes."""

    def make_sampler(self, config: Config, task: Env) -> Sampler:
        """The replay sampler producing the batches `update` consumes."""

    # ----- the pure functions -----
    def init(self, key: jax.Array) -> AgentState:
        """A fresh state (the same on every device of a data-parallel run)."""

    def act(self, actor_params: Any, obs: jax.Array, key: jax.Array | None = None, deterministic: bool = False) -> jax.Array:
        """Actions [B, A] in [-1, 1] for observations concat(state, goal) [B, S + G]."""

    def select_action(self, params: dict[str, Any], obs: jax.Array, key: jax.Array | None, samples: int) -> jax.Array:
        """The action of a selection rule: `samples` 0 = deterministic, 1 = one exploration sample,
        K >= 2 = the best of K samples by the critic (only when `best_of_k`). `params` is `export()`."""

    def update(self, state: AgentState, batch: Any, key: jax.Array) -> tuple[AgentState, dict[str, jax.Array]]:
        """One SGD step; metrics are scalars named `critic/...`, `actor/...`, `alpha/...`."""

    # ----- what the tools around it ask -----
    def param_groups(self, state: AgentState) -> dict[str, Any]:
        """{network name: parameter tree}, the networks `deepcrl train --dry-run` lists."""

    def cost_model(self, config: Config, num_devices: int) -> tuple[int, MemoryEstimate] | None:
        """(analytic FLOPs per SGD update, memory per device) for the dry run, or None when not modelled."""

    @classmethod
    def label(cls, config: Config) -> str:
        """A short name of the agent as configured, e.g. "sac + HER" (dry run, run-directory names)."""

    @classmethod
    def describe(cls, config: Config) -> str:
        """The summary's "agent" row, e.g. "sac + HER, sparse reward"."""

    def summary_rows(self, last: dict[str, float]) -> list[tuple[str, str]]:
        """Rows of the closing summary about the agent's own metrics in the last metrics.csv row."""
