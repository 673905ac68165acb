"""Every knob of a training run, one line of comment each, and all validation in one place.

`Config` is flat on purpose: the command line (`deepcrl train --depth 16 --batch-size 512`) and
Python (`Config(depth=16, batch_size=512)`) use the same names. `validate(config)` checks every value
before anything is compiled or written and raises `ConfigError` with one line naming the bad value and
what is allowed.

Defaults: the paper's algorithm settings (paper.md §2-§6: Adam 3e-4, representation size 64,
negative-L2 energy, forward InfoNCE with a 0.1 logsumexp penalty, gamma 0.99, target entropy
-0.5 x action size) with sizes chosen so that `deepcrl train` finishes in a few minutes on a 2-core
CPU. The paper's GPU sizes are in docs/recipes.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepcrl.errors import ConfigError


@dataclass(frozen=True)
class Config:
    # --- task ---
    env: str = "point_u_maze"  # task: point (with --layout) or point_<layout>, e.g. point_u_maze, point_open
    layout: str | None = None  # maze layout for --env point: open, u_maze, u4_maze, u5_maze, big_maze, hardest_maze, maze:PATH
    episode_length: int = 100  # steps per episode before truncation
    max_speed: float = 0.5  # point mass: largest distance moved per step, in cells
    goal_threshold: float = 0.5  # success radius around the goal, in cells
    train_starts: str = "free"  # where training episodes start: free (any free cell) or start_cells
    train_goals: str = "free"  # where training goals are drawn: free (any free cell) or goal_cells

    # --- networks ---
    depth: int = 8  # Dense layers inside residual blocks, a multiple of 4 (both networks)
    actor_depth: int | None = None  # actor depth; defaults to --depth
    critic_depth: int | None = None  # critic (phi and psi) depth; defaults to --depth
    width: int = 64  # hidden width (both networks)
    actor_width: int | None = None  # actor width; defaults to --width
    critic_width: int | None = None  # critic width; defaults to --width
    repr_dim: int = 64  # size of the phi(s, a) and psi(g) representations
    layer_norm: bool = True  # LayerNorm after every Dense (paper ablation: off)
    activation: str = "swish"  # swish or relu (paper ablation: relu)
    residual: bool = True  # skip connections around blocks of 4 layers (paper ablation: off)
    unroll: int = 0  # blocks per scan iteration; 0 picks by measurement (see training.resolve_unroll)

    # --- CRL losses ---
    energy: str = "l2"  # critic energy f(s,a,g): l2 (negative L2 distance), l2_sq, l1, dot, cosine
    contrastive_loss: str = "fwd_infonce"  # fwd_infonce, bwd_infonce, sym_infonce, binary_nce
    logsumexp_penalty: float = 0.1  # coefficient of the logsumexp^2 regulariser
    entropy_scale: float = 0.5  # target entropy = -entropy_scale x action size
    actor_lr: float = 3e-4  # Adam learning rate of the actor
    critic_lr: float = 3e-4  # Adam learning rate of phi and psi
    alpha_lr: float = 3e-4  # Adam learning rate of the entropy temperature

    # --- data collection, replay and relabelling ---
    num_envs: int = 256  # environments stepped in parallel
    unroll_length: int = 25  # steps per environment per collection (one epoch collects num_envs x unroll_length)
    updates_per_epoch: int = 40  # SGD steps per collection; update-to-data ratio = this : num_envs x unroll_length
    batch_size: int = 256  # transitions per SGD step (also the number of InfoNCE negatives + 1)
    buffer_size: int = 1000  # replay capacity per environment, in steps (FIFO)
    prefill_steps: int = 100  # steps per environment collected with the initial policy before any update
    gamma: float = 0.99  # relabelling: future-goal offset ~ Geometric(1 - gamma) within the trajectory

    # --- run ---
    total_env_steps: int = 4_000_000  # environment steps of training (prefill not counted)
    num_evals: int = 20  # evaluations over the run (evenly spaced, the last one at the end)
    num_eval_envs: int = 128  # evaluation episodes per evaluation
    seed: int = 0  # PRNG seed of the whole run
    run_dir: str | None = None  # output folder; default runs/<env>-d<depth>-s<seed>-<time>
    progress: bool = True  # show the progress bar
    tensorboard: bool = True  # write TensorBoard events next to metrics.csv

    # --- derived values (not flags) ---
    @property
    def resolved_actor_depth(self) -> int:
        return self.depth if self.actor_depth is None else self.actor_depth

    @property
    def resolved_critic_depth(self) -> int:
        return self.depth if self.critic_depth is None else self.critic_depth

    @property
    def resolved_actor_width(self) -> int:
        return self.width if self.actor_width is None else self.actor_width

    @property
    def resolved_critic_width(self) -> int:
        return self.width if self.critic_width is None else self.critic_width

    @property
    def env_steps_per_epoch(self) -> int:
        return self.num_envs * self.unroll_length

    @property
    def num_epochs(self) -> int:
        return max(1, math.ceil(self.total_env_steps / self.env_steps_per_epoch))

    @property
    def eval_epochs(self) -> list[int]:
        """Epoch numbers (1-based) after which an evaluation runs; the last epoch is always one."""
        n = self.num_epochs
        k = min(self.num_evals, n)
        return sorted({max(1, round(n * (i + 1) / k)) for i in range(k)})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(known))}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "Config":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read config {str(path)!r}: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config {str(path)!r} must hold a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)


ACTIVATIONS = ("swish", "relu")
TRAIN_STARTS = ("free", "start_cells")
TRAIN_GOALS = ("free", "goal_cells")


def _positive(name: str, value: Any, kind: type = int) -> None:
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name}={value!r} is not allowed; it must be a positive integer")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={value!r} is not allowed; it must be a positive {'integer' if kind is int else 'number'}")


def _depth(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 4:
        raise ConfigError(f"{name}={value!r} is not allowed; depth counts the Dense layers inside residual blocks and must be a positive multiple of 4 (4, 8, 16, ...)")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of: {', '.join(allowed)}")


def validate(config: Config) -> None:
    """Check every field and every combination; raise ConfigError (one line) on the first problem."""
    from deepcrl.losses import ENERGY_NAMES, LOSS_NAMES

    c = config
    for name in ("depth", "actor_depth", "critic_depth"):
        value = getattr(c, name)
        if value is not None:
            _depth(name, value)
    for name in ("width", "actor_width", "critic_width"):
        value = getattr(c, name)
        if value is not None:
            _positive(name, value)
    for name in ("repr_dim", "episode_length", "num_envs", "unroll_length", "updates_per_epoch", "batch_size",
                 "buffer_size", "total_env_steps", "num_evals", "num_eval_envs"):
        _positive(name, getattr(c, name))
    for name in ("max_speed", "goal_threshold", "actor_lr", "critic_lr", "alpha_lr"):
        _positive(name, getattr(c, name), float)
    if isinstance(c.unroll, bool) or not isinstance(c.unroll, int) or c.unroll < 0:
        raise ConfigError(f"unroll={c.unroll!r} is not allowed; use 0 (pick by measurement) or a positive number of blocks per scan step")
    if isinstance(c.prefill_steps, bool) or not isinstance(c.prefill_steps, int) or c.prefill_steps < 0:
        raise ConfigError(f"prefill_steps={c.prefill_steps!r} is not allowed; it must be an integer >= 0")
    if isinstance(c.seed, bool) or not isinstance(c.seed, int) or not 0 <= c.seed < 2**32:
        raise ConfigError(f"seed={c.seed!r} is not allowed; it must be an integer in [0, 2^32)")
    for name in ("logsumexp_penalty", "entropy_scale"):
        value = getattr(c, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name}={value!r} is not allowed; it must be a number >= 0")
    if not isinstance(c.gamma, (int, float)) or not 0 < c.gamma < 1:
        raise ConfigError(f"gamma={c.gamma!r} is not allowed; it must lie strictly between 0 and 1")
    _choice("activation", c.activation, ACTIVATIONS)
    _choice("energy", c.energy, ENERGY_NAMES)
    _choice("contrastive_loss", c.contrastive_loss, LOSS_NAMES)
    _choice("train_starts", c.train_starts, TRAIN_STARTS)
    _choice("train_goals", c.train_goals, TRAIN_GOALS)
    if c.buffer_size < c.unroll_length:
        raise ConfigError(f"buffer_size={c.buffer_size} is smaller than unroll_length={c.unroll_length}; one collection must fit in the buffer, raise --buffer-size")
    if c.buffer_size < c.episode_length:
        raise ConfigError(f"buffer_size={c.buffer_size} is smaller than episode_length={c.episode_length}; the buffer must hold a whole episode for relabelling, raise --buffer-size")
    if c.prefill_steps > c.buffer_size:
        raise ConfigError(f"prefill_steps={c.prefill_steps} is larger than buffer_size={c.buffer_size}; the prefill must fit in the buffer")
    available = c.num_envs * min(c.buffer_size, c.prefill_steps + c.unroll_length)
    if c.batch_size > available:
        raise ConfigError(
            f"batch_size={c.batch_size} is larger than the {available} transitions the buffer holds at the first update "
            f"(num_envs x (prefill_steps + unroll_length)); lower --batch-size or raise --num-envs / --prefill-steps"
        )
    make_env_from_config(c)  # unknown env / layout / bad maze file / bad env numbers raise ConfigError here


def make_env_from_config(config: Config):
    """Build the task a config names (raises ConfigError for unknown names and bad layouts)."""
    from deepcrl.envs import make_env

    return make_env(
        config.env,
        layout=config.layout,
        episode_length=config.episode_length,
        max_speed=config.max_speed,
        goal_threshold=config.goal_threshold,
        train_starts=config.train_starts,
        train_goals=config.train_goals,
    )
