"""Every knob of a training run, one line of comment each, and the checks that need neither agent nor task.

`Config` is flat on purpose: the command line (`deepcrl train --depth 16 --batch-size 512`) and
Python (`Config(depth=16, batch_size=512)`) use the same names. `check_fields(config)` checks each
value's type and range; `deepcrl.build.validate` adds what needs the agent or the task (choice lists,
settings an agent does not read, the task's episode length) before anything is compiled or written.
Both raise `ConfigError` with one line naming the bad value and what is allowed. Config files and
presets: deepcrl.config_files.

Defaults: the algorithm settings of Wang et al., "1000 Layer Networks for Self-Supervised RL"
(arXiv 2503.14858) and its reference code (Adam 3e-4, representation size 64, negative-L2 energy,
forward InfoNCE with a 0.1 logsumexp penalty, gamma 0.99, target entropy -0.5 x action size), with
sizes chosen so that `deepcrl train` finishes in a few minutes on a 2-core CPU. The paper's GPU sizes: `--preset paper` (deepcrl.presets, docs/tasks.md).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
from dataclasses import dataclass
from typing import Any, Mapping, Union, get_args, get_origin, get_type_hints

from deepcrl.errors import ConfigError


@dataclass(frozen=True)
class Config:
    # --- task ---
    env: str = "point_u_maze"  # task: point_<layout> (e.g. point_u_maze), ant, ant_<maze>, humanoid, humanoid_<maze>, arm_reach, arm_push_easy/hard, arm_binpick_easy/hard, reacher, pusher (docs/tasks.md)
    # maze layout for --env point, ant or humanoid: open, u_maze, u4_maze, u5_maze, big_maze, hardest_maze, maze:PATH; None: the one the env names (point: u_maze; ant, humanoid: the open field)
    layout: str | None = None
    episode_length: int | None = None  # steps per episode before truncation; None: the task's (point mazes 100, MuJoCo tasks 1000)
    max_speed: float | None = None  # point mass only: largest distance moved per step, in cells; None: the task's (0.5)
    # success radius around the goal; None: the task's (point 0.5 cells, ant/humanoid 0.5 m, arms 0.1 m)
    goal_threshold: float | None = None
    # point mass only: where training episodes start: free (any free cell) or start_cells; None: the task's (free)
    train_starts: str | None = None
    # point mass only: where training goals are drawn: free (any free cell) or goal_cells; None: the task's (free)
    train_goals: str | None = None
    # point mazes: each training start and goal drawn as a pair at most K cells apart along the corridors, distances 1..K alike (the paper's stitching test: 3); None: --train-starts and --train-goals
    train_max_goal_cells: int | None = None
    # point mazes: evaluate on start/goal pairs at every path distance 1..M alike, with success per distance (eval/success_d<K>); None: the layout's far goals
    eval_max_goal_cells: int | None = None
    chain_goals: bool = False  # ours, not the paper's: a training episode that reaches its goal goes on towards a fresh one, so episodes travel far (docs/long_horizons.md)
    # the reference code's defect, for comparison: a reset keeps the goal, so each environment keeps its first goal all run
    keep_first_goal: bool = False

    # --- agent (docs/baselines.md) ---
    agent: str = "crl"  # crl (contrastive RL), sac or td3 (TD baselines with twin Q and target networks), gcbc (goal-conditioned behaviour cloning of its own relabelled data, i.e. GCSL)
    her: bool = False  # sac / td3: hindsight relabelling, HER's 'future' strategy (goals replaced by later states of the same episode)
    # sac / td3 with --her: fraction of sampled transitions relabelled (HER's k = 4 future goals per transition: 4/5)
    her_fraction: float = 0.8
    reward: str = "sparse"  # sac / td3: sparse (1 within the goal threshold, else 0) or dense (minus the distance to the goal)
    goal_terminal: bool = False  # sac / td3: reaching the goal ends the TD return (no bootstrap); off: only failures (falls) do, the agent learns to stay at the goal
    tau: float = 0.005  # sac / td3: target networks move this fraction towards the online networks per target update (both papers' 0.005)
    policy_noise: float = 0.2  # td3: std of the target policy smoothing noise (Fujimoto et al. 2018)
    noise_clip: float = 0.5  # td3: the smoothing noise is clipped to +-noise_clip (Fujimoto et al. 2018)
    policy_delay: int = 2  # td3: Q updates per actor and target update (Fujimoto et al. 2018)
    exploration_noise: float = 0.1  # td3: std of the Gaussian action noise while collecting (Fujimoto et al. 2018)
    # td3: coefficient of mean(pre-tanh action^2) in the actor loss against tanh saturation (HER's DDPG used 1.0); 0 = plain TD3
    preactivation_penalty: float = 0.0

    # --- acting ---
    explore_action_samples: int = 1  # actions while collecting: 1 = one sample of the policy (the paper's), 0 = its deterministic action, K >= 2 = the best of K policy samples by the critic (crl, sac; the reference code's --expl_actor K)
    eval_action_samples: int = 0  # actions while evaluating: 0 = the deterministic tanh(mean) (the paper's), 1 = one policy sample, K >= 2 = the best of K policy samples by the critic (crl, sac; the reference code's --eval_actor K)

    # --- networks ---
    depth: int = 8  # Dense layers inside residual blocks, a multiple of 4 (both networks)
    actor_depth: int | None = None  # actor depth; None: --depth
    critic_depth: int | None = None  # critic (phi and psi, or the Q-networks) depth; None: --depth
    width: int = 64  # hidden width (both networks)
    actor_width: int | None = None  # actor width; None: --width
    critic_width: int | None = None  # critic width; None: --width
    repr_dim: int = 64  # size of the phi(s, a) and psi(g) representations
    layer_norm: bool = True  # LayerNorm after every Dense (paper ablation: off, the same as --normalization none)
    normalization: str = "layer_norm"  # layer_norm (the paper's), none, or hyperspherical (appendix A.6: unit-norm weights after every step, no LayerNorm; networks.py)
    activation: str = "swish"  # swish or relu (paper ablation: relu)
    residual: bool = True  # skip connections around blocks of 4 layers (paper ablation: off)
    network_unroll: int = 0  # residual blocks per scan iteration of the networks; 0 picks by measurement (networks.resolve_unroll)
    remat: bool = False  # recompute each residual block in the backward pass: only block inputs are kept, about 0.5 [batch, width] arrays per layer instead of 1.25, for 16-19% more time on a CPU (rolled networks, depth > 16 by default; measured to save nothing unrolled)
    # collector / learner split (finding 8): a second agent of this depth learns only from the run's buffer, never collecting (learner/... columns); None: none
    learner_depth: int | None = None
    learner_width: int | None = None  # the learner's width (both its networks); None: --width
    matmul_dtype: str = "float32"  # float32 or bfloat16: dtype of the networks' matrix multiplies (parameters, LayerNorm statistics and losses stay float32)

    # --- CRL losses ---
    energy: str = "l2"  # critic energy f(s,a,g): l2 (negative L2 distance), l2_sq, l1, dot, cosine, mrn (a quasimetric, appendix A.4)
    contrastive_loss: str = "fwd_infonce"  # fwd_infonce, bwd_infonce, sym_infonce, binary_nce
    logsumexp_penalty: float = 0.1  # coefficient of the logsumexp^2 regulariser
    actor_random_goals: float = 0.0  # crl, ours: fraction of the actor's rows aimed at another row's goal (a random buffer state, often far) instead of their own future state; 0 = the paper's
    # crl / sac: target entropy = -entropy_scale x action size; None: the agent's (crl 0.5 as in the paper, sac 1.0 as in Haarnoja et al. 2018)
    entropy_scale: float | None = None
    actor_lr: float | None = None  # Adam learning rate of the actor; None: the agent's (3e-4; td3 1e-3 as in Fujimoto et al. 2018)
    # Adam learning rate of the critic (crl: phi and psi; sac / td3: the two Q-networks); None: the agent's, as --actor-lr
    critic_lr: float | None = None
    alpha_lr: float = 3e-4  # crl / sac: Adam learning rate of the entropy temperature

    # --- data collection, replay and relabelling ---
    num_envs: int = 256  # environments stepped in parallel
    unroll_length: int = 25  # steps per environment per collection (one epoch collects num_envs x unroll_length)
    updates_per_epoch: int = 40  # SGD steps per collection; update-to-data ratio = this : num_envs x unroll_length
    batch_size: int = 256  # transitions per SGD step (also the number of InfoNCE negatives + 1)
    buffer_size: int = 1000  # replay capacity per environment, in steps (FIFO)
    prefill_steps: int = 100  # steps per environment collected with the initial policy before any update
    gamma: float = 0.99  # discount: crl / gcbc relabel with future-goal offset ~ Geometric(1 - gamma) within the trajectory; sac / td3 discount TD targets by it

    # --- run ---
    total_env_steps: int = 4_000_000  # environment steps of training (prefill not counted)
    num_evals: int = 20  # evaluations over the run (evenly spaced, the last one at the end)
    num_eval_envs: int = 128  # evaluation episodes per evaluation
    seed: int = 0  # PRNG seed of the whole run (with --num-seeds N: the first of seeds seed .. seed+N-1)
    num_seeds: int = 1  # independent seeds trained side by side in one jitted program (vmap over the whole training state)
    num_devices: int = 1  # devices to split environments and the SGD batch over (data parallel, global InfoNCE negatives); 0 = all visible
    run_dir: str | None = None  # output folder; None: runs/<env>[-<agent>]-d<depth>-s<seed>-<time> (docs/architecture.md, run directories)
    progress: bool = True  # show the progress bar
    tensorboard: bool = True  # write TensorBoard events next to metrics.csv
    wandb: bool = False  # also log to Weights & Biases (the optional extra wandb); offline (RUN_DIR/wandb) unless W&B has an API key here
    wandb_project: str = "deepcrl"  # --wandb: the W&B project
    wandb_group: str | None = None  # --wandb: the W&B group (None: none; a sweep's points: the sweep folder's name)
    wandb_name: str | None = None  # --wandb: the W&B run name (None: the run directory's name; a sweep's points: the point's name)
    wandb_mode: str | None = None  # --wandb: online, offline, disabled; None: WANDB_MODE if set, else online with an API key, else offline

    # --- checkpoints and numerical safety ---
    checkpoint_every: int = 50  # save the whole training state every N epochs (0: only at the end and on SIGINT/SIGTERM)
    keep_checkpoints: int = 2  # training-state checkpoints kept, newest first
    save_buffer: bool = True  # include the replay buffer in training-state checkpoints (needed for an exact resume)
    max_grad_norm: float = 0.0  # clip each network's gradient to this global norm; 0 = off (the paper clips nothing)

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
    def resolved_normalization(self) -> str:
        return "none" if not self.layer_norm else self.normalization

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
    def from_dict(cls, data: Mapping[str, Any]) -> "Config":
        """A Config from a mapping of field names to values; ConfigError names any unknown key.

        Values are not checked here: `validate` checks their types and ranges.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"a config must be a mapping of setting names to values, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        # Keys need not be strings (YAML allows `1: 2`), so sort them by their repr, never by value.
        unknown = sorted((short_repr(k) for k in data if not (isinstance(k, str) and k in known)))
        if unknown:
            raise ConfigError(f"unknown config key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
        return cls(**data)


def _positive(name: str, value: Any, kind: type = int) -> None:
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name}={value!r} is not allowed; it must be a positive integer")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={value!r} is not allowed; it must be a positive {'integer' if kind is int else 'number'}")


def _depth(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 4:
        raise ConfigError(
            f"{name}={value!r} is not allowed; depth counts the Dense layers inside residual blocks and must be a positive multiple of 4 (4, 8, 16, ...)"
        )


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of: {', '.join(allowed)}")


def check_fields(config: Config) -> None:
    """Check each field's type and range, and the combinations that need no agent or task; raise
    ConfigError (one line) on the first problem. `deepcrl.build.validate` runs this, then the rest."""
    c = config
    check_types(c)
    for name in ("depth", "actor_depth", "critic_depth", "learner_depth"):
        value = getattr(c, name)
        if value is not None:
            _depth(name, value)
    if c.wandb_mode is not None:
        _choice("wandb_mode", c.wandb_mode, ("online", "offline", "disabled"))
    given = [n for n in ("wandb_group", "wandb_name", "wandb_mode", "wandb_project") if getattr(c, n) not in (None, "deepcrl")]
    if given and not c.wandb:
        raise ConfigError(f"{given[0]}={getattr(c, given[0])!r} is not allowed without --wandb; add --wandb to log to Weights & Biases")
    if c.learner_width is not None and c.learner_depth is None:
        raise ConfigError(f"learner_width={c.learner_width!r} is not allowed without --learner-depth; a learner needs its depth")
    for name in ("width", "actor_width", "critic_width", "learner_width"):
        value = getattr(c, name)
        if value is not None:
            _positive(name, value)
    if c.chain_goals and c.train_max_goal_cells is not None:
        why = "a chained goal would not keep to K cells from where the episode is"
        raise ConfigError(f"chain_goals=True is not allowed with train_max_goal_cells={c.train_max_goal_cells}; {why}")
    if c.keep_first_goal and (c.chain_goals or c.train_max_goal_cells is not None):
        other = "chain_goals=True" if c.chain_goals else f"train_max_goal_cells={c.train_max_goal_cells}"
        raise ConfigError(f"keep_first_goal=True is not allowed with {other}; it draws goals that a kept first goal would override")
    for name in ("episode_length", "train_max_goal_cells", "eval_max_goal_cells"):
        if getattr(c, name) is not None:
            _positive(name, getattr(c, name))
    for name in ("repr_dim", "num_envs", "unroll_length", "updates_per_epoch", "batch_size", "buffer_size", "total_env_steps", "num_evals"):
        _positive(name, getattr(c, name))
    _positive("num_eval_envs", c.num_eval_envs)
    for name in ("actor_lr", "critic_lr", "alpha_lr", "max_speed", "goal_threshold"):
        if getattr(c, name) is not None:
            _positive(name, getattr(c, name), float)
    if isinstance(c.network_unroll, bool) or not isinstance(c.network_unroll, int) or c.network_unroll < 0:
        raise ConfigError(
            f"network_unroll={c.network_unroll!r} is not allowed; use 0 (pick by measurement) or a positive number of blocks per scan step"
        )
    if isinstance(c.checkpoint_every, bool) or not isinstance(c.checkpoint_every, int) or c.checkpoint_every < 0:
        raise ConfigError(
            f"checkpoint_every={c.checkpoint_every!r} is not allowed; it must be an integer >= 0 (0 turns periodic checkpoints off)"
        )
    if not c.layer_norm and c.normalization not in ("layer_norm", "none"):
        raise ConfigError(
            f"normalization={c.normalization!r} is not allowed with layer_norm=False; --no-layer-norm means --normalization none"
        )
    _positive("keep_checkpoints", c.keep_checkpoints)
    if not isinstance(c.max_grad_norm, (int, float)) or not math.isfinite(c.max_grad_norm) or c.max_grad_norm < 0:
        raise ConfigError(f"max_grad_norm={c.max_grad_norm!r} is not allowed; it must be a number >= 0 (0 turns clipping off)")
    if isinstance(c.prefill_steps, bool) or not isinstance(c.prefill_steps, int) or c.prefill_steps < 0:
        raise ConfigError(f"prefill_steps={c.prefill_steps!r} is not allowed; it must be an integer >= 0")
    if isinstance(c.seed, bool) or not isinstance(c.seed, int) or not 0 <= c.seed < 2**32:
        raise ConfigError(f"seed={c.seed!r} is not allowed; it must be an integer in [0, 2^32)")
    for name in ("explore_action_samples", "eval_action_samples"):
        value = getattr(c, name)
        if value < 0:
            raise ConfigError(
                f"{name}={value!r} is not allowed; use 0 (deterministic action), 1 (one policy sample) or K >= 2 (best of K samples by the critic)"
            )
    for name in ("her_fraction", "actor_random_goals"):
        if not 0 <= getattr(c, name) <= 1:
            raise ConfigError(f"{name}={getattr(c, name)!r} is not allowed; it must lie in [0, 1]")
    if not 0 < c.tau <= 1:
        raise ConfigError(f"tau={c.tau!r} is not allowed; it must lie in (0, 1]")
    _positive("policy_delay", c.policy_delay)
    for name in ("policy_noise", "noise_clip", "exploration_noise", "preactivation_penalty"):
        value = getattr(c, name)
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name}={value!r} is not allowed; it must be a number >= 0")
    for name in ("logsumexp_penalty", "entropy_scale"):
        value = getattr(c, name)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name}={value!r} is not allowed; it must be a number >= 0")
    if not isinstance(c.gamma, (int, float)) or not 0 < c.gamma < 1:
        raise ConfigError(f"gamma={c.gamma!r} is not allowed; it must lie strictly between 0 and 1")
    _positive("num_seeds", c.num_seeds)
    if c.seed + c.num_seeds > 2**32:
        raise ConfigError(f"seed={c.seed} with num_seeds={c.num_seeds} runs past the largest seed 2^32 - 1; lower --seed or --num-seeds")
    if c.num_devices < 0:
        raise ConfigError(f"num_devices={c.num_devices!r} is not allowed; it must be an integer >= 0 (0 uses every visible device)")
    if c.num_devices > 0:
        check_divisible_by_devices(c, c.num_devices)
    if c.buffer_size < c.unroll_length:
        raise ConfigError(
            f"buffer_size={c.buffer_size} is smaller than unroll_length={c.unroll_length}; one collection must fit in the buffer, raise --buffer-size"
        )
    if c.prefill_steps > c.buffer_size:
        raise ConfigError(f"prefill_steps={c.prefill_steps} is larger than buffer_size={c.buffer_size}; the prefill must fit in the buffer")
    available = c.num_envs * min(c.buffer_size, c.prefill_steps + c.unroll_length)
    if c.batch_size > available:
        raise ConfigError(
            f"batch_size={c.batch_size} is larger than the {available} transitions the buffer holds at the first update "
            f"(num_envs x (prefill_steps + unroll_length)); lower --batch-size or raise --num-envs / --prefill-steps"
        )


def check_divisible_by_devices(config: Config, num_devices: int) -> None:
    """ConfigError unless environments and the SGD batch split evenly over `num_devices` devices."""
    for name in ("num_envs", "batch_size"):
        value = getattr(config, name)
        if value % num_devices:
            raise ConfigError(f"{name}={value} does not split over {num_devices} devices; it must be a multiple of the device count")


# Config fields renamed since the first release: a stored config.json (or a config file) that uses the
# old name still loads, under the new one.
RENAMED_FIELDS = {"unroll": "network_unroll"}


# ----------------------------------------------------------------------------------------------
# Value types (also of config files: deepcrl.config_files)
# ----------------------------------------------------------------------------------------------

# Integers end up in int32 device arrays (step counters, buffer rows, episode ids), so every integer
# setting but the seed (checked in validate, [0, 2^32)) must stay below 2^31.
INT_LIMIT = 2**31
_TYPE_TEXT = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def short_repr(value: Any, limit: int = 80) -> str:
    """repr(value) on one line, cut to about `limit` characters (error messages stay one readable line)."""
    try:
        text = repr(value)
    except Exception:  # a repr that fails (or recurses) must not hide the real error
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.lru_cache(maxsize=None)
def field_types() -> dict[str, tuple[type, bool]]:
    """Each Config field's value type (int, float, bool or str) and whether it may be None."""
    out = {}
    for name, hint in get_type_hints(Config).items():
        args = get_args(hint)
        optional = get_origin(hint) in (Union, types.UnionType) and type(None) in args
        base = next(a for a in args if a is not type(None)) if optional else hint
        out[name] = (base, optional)
    return out


def check_field_type(name: str, value: Any) -> Any:
    """`value` if it has the type of Config field `name`, with ints widened to float for float fields.

    Bools are not integers here, None is allowed only for Optional fields, and integers must lie below
    2^31. Raises ConfigError (one line naming the field, the value and the expected type).
    """
    kind, optional = field_types()[name]
    if value is None and optional:
        return None
    need = _TYPE_TEXT[kind] + (" or null" if optional else "")
    bad = ConfigError(f"{name}={short_repr(value)} is not allowed; it must be {need}")
    if kind is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if kind is str:
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(value, bool):
        raise bad
    if kind is int:
        if not isinstance(value, int):
            raise bad
        if name != "seed" and value >= INT_LIMIT:
            raise ConfigError(f"{name}={short_repr(value)} is not allowed; it must be an integer below 2^31 = {INT_LIMIT}")
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{name}={short_repr(value)} is not allowed; it is too large for a float") from None
    if not isinstance(value, float):
        raise bad
    return value


def check_types(config: Config) -> None:
    """Check that every field of `config` holds a value of its declared type (see check_field_type), and
    that the path-like strings can name a file at all (the OS rejects a NUL character with ValueError)."""
    for name in field_types():
        check_field_type(name, getattr(config, name))
    for name in ("run_dir", "layout"):
        value = getattr(config, name)
        if value is not None and "\x00" in value:
            raise ConfigError(f"{name}={short_repr(value)} is not allowed; a path cannot contain a NUL character")
