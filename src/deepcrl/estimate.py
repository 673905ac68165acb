"""Memory and FLOPs of a training run, estimated from the config alone (pure Python: nothing is compiled or allocated).

    est = estimate_memory(config, state_size, goal_size, action_size)   # a MemoryEstimate, bytes per device
    est.total_bytes, est.activation_bytes, est.activation_bytes_other_remat

What is counted, per device (D devices: `config.num_devices`, or every visible device when it is 0),
and N times with `num_seeds` N (the whole training state is vmapped over seeds):

- parameters: actor, phi, psi in float32 (replicated on every device);
- optimiser: Adam's two moments per parameter (2x the parameters) and its step counters;
- gradients: one float32 copy of the parameters, live during the update;
- replay buffer: `buffer_size` x `num_envs / D` transitions (state, action, achieved goal in float32,
  an int32 episode id);
- activations of one SGD update: what the backward pass keeps alive, the logits and the transient
  working set (below). Data parallel, each device runs the update on b = batch_size / D rows, but its
  InfoNCE logits are b x B because the goal representations of the whole batch are all-gathered.

Activation model (one update = actor loss, then critic loss; see agents/crl.py). In units of a float32
[b, W] array (b rows on this device, W the network's width), the backward pass keeps per Dense layer
of a residual block, for each network pass that is differentiated:

    rolled scan, backward_saves="dots"   (the default "auto" when the scan has more than one iteration)
                                         matmul outputs (1 per layer, in the matmul dtype) + the block's input
                                         (1/4 per layer) when the weights get a gradient
    rolled scan, backward_saves="all"    about 6.8 (autodiff's default residuals: Dense input, LayerNorm and
                                         activation intermediates)
    rolled scan, remat                   about 0.5 (the block input, plus what XLA keeps around the recompute;
                                         JAX itself saves 0.25)
    unrolled (all blocks in one scan     about 3.5 whatever the policy: XLA schedules the whole network and
    iteration: depth <= 16 by default)   remat does not pay (measured)

The passes: actor (weight gradients), phi inside the actor loss (gradient to its input only: no block
input kept), phi and psi in the critic loss (weight gradients). They are summed, as if all were alive at
once (XLA measured close to that for the critic; the actor's share is often hidden by scheduling).
Plus a working set of about 35 [b, critic W] + 15 [b, actor W] arrays (input layers, heads, one block's
backward internals), and the logits: 4 float32 [b, B] arrays for the l2 energies (2 for dot / cosine, 2
more for the column-wise losses; l1 adds a [b, B, repr_dim] difference tensor twice).

The coefficients were calibrated against XLA's buffer assignment on the CPU backend
(`jax.jit(update, donate_argnums=0).lower(...).compile().memory_analysis().temp_size_in_bytes`, which
holds the gradients and the activations when the state is donated, as in a training epoch), at widths
64-512, batches 64-1024, depths 4-64; `update_memory_from_xla` measures it; tests/test_estimate.py checks
the estimate stays within 0.5x-2x of it. bfloat16 matmuls: the model keeps the saved matmul outputs at 2
bytes, as JAX saves them; XLA on the CPU measured almost no saving (it computes bf16 dots in float32), so
on a CPU the estimate is low by up to about 25% there. Not modelled: XLA's own rematerialisation, fusion
of the scan on accelerators, allocator fragmentation, the environments' states and the program code.
"""

from __future__ import annotations

import dataclasses
from typing import Any

F32 = 4  # bytes of a float32 / int32
MATMUL_BYTES = {"float32": 4, "bfloat16": 2}

# Calibrated coefficients (see the module docstring): [b, W] float32 arrays per Dense layer per pass.
SAVED_PER_LAYER_ALL = 6.8  # rolled, backward_saves="all"
SAVED_PER_LAYER_REMAT = 0.5  # rolled, remat=True
SAVED_PER_LAYER_UNROLLED = 3.5  # every block in one scan iteration
WORKING_CRITIC = 35.0  # [b, critic width] arrays of transient working set
WORKING_ACTOR = 15.0  # [b, actor width] arrays of transient working set
LOGITS_ARRAYS = {"l2": 4, "l2_sq": 4, "l1": 2, "dot": 2, "cosine": 2}
COLUMN_LOSS_EXTRA = 2  # bwd_infonce / sym_infonce: logsumexp over columns too


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Estimated bytes per device (all seeds), for one config. `activation_bytes` is one SGD update."""

    num_devices: int
    num_seeds: int
    remat: bool  # the config's setting; activation_bytes is for it
    backward_saves: str  # what the critic's blocks keep: "remat", or the resolved policy "dots" / "all" (unrolled: "all")
    param_bytes: int  # actor + phi + psi, float32, replicated
    optimizer_bytes: int  # Adam moments (2x parameters) and step counters
    gradient_bytes: int  # one float32 copy of the parameters during the update
    buffer_bytes: int  # this device's replay-buffer columns
    activation_bytes: int  # saved residuals + working set + logits of one update, at the config's remat
    activation_bytes_other_remat: int  # the same with remat toggled, for comparison
    saved_bytes: int  # the part of activation_bytes that the backward pass keeps (grows with depth)
    logits_bytes: int  # the [b, B] logit arrays inside activation_bytes
    batch_rows_per_device: int
    envs_per_device: int

    @property
    def state_bytes(self) -> int:
        """Parameters and optimiser state (what a checkpoint of the agent holds)."""
        return self.param_bytes + self.optimizer_bytes

    @property
    def update_temp_bytes(self) -> int:
        """Gradients + activations: comparable to XLA's temp size of a donated update."""
        return self.gradient_bytes + self.activation_bytes

    @property
    def total_bytes(self) -> int:
        """Parameters, optimiser, gradients, buffer and one update's activations, per device."""
        return self.param_bytes + self.optimizer_bytes + self.gradient_bytes + self.buffer_bytes + self.activation_bytes


# ----------------------------------------------------------------------------------------------
# Config access: works on a deepcrl.config.Config and on an agents.crl.CRLConfig
# ----------------------------------------------------------------------------------------------


def _sizes(config: Any) -> dict[str, Any]:
    """Widths, depths and the other network settings, from a Config or a CRLConfig."""

    def pick(resolved: str, plain: str):
        value = getattr(config, resolved, None)
        return value if value is not None else getattr(config, plain)

    return {
        "actor_width": pick("resolved_actor_width", "actor_width"),
        "actor_depth": pick("resolved_actor_depth", "actor_depth"),
        "critic_width": pick("resolved_critic_width", "critic_width"),
        "critic_depth": pick("resolved_critic_depth", "critic_depth"),
        "repr_dim": config.repr_dim,
        "normalization": pick("resolved_normalization", "normalization"),
    }


def default_backward_saves() -> str:
    """The networks' residual policy when remat is off: ResidualMLP's default."""
    from deepcrl.networks import ResidualMLP

    return ResidualMLP.backward_saves


def backward_saves_of(config: Any) -> str:
    """The config's backward_saves setting, or the networks' default ("auto", "dots" or "all")."""
    value = getattr(config, "backward_saves", None)
    return value if value else default_backward_saves()


def resolved_policy(policy: str, depth: int, blocks_per_iter: int) -> str:
    """ "dots" or "all" for one network: networks.resolve_backward_saves."""
    from deepcrl.networks import resolve_backward_saves

    return resolve_backward_saves(policy, depth, blocks_per_iter)


def blocks_per_iteration(config: Any, depth: int, which: str) -> int:
    """Residual blocks per scan iteration of a network of this depth, as the run resolves it.

    A CRLConfig carries it (actor_unroll / critic_unroll); a Config's `network_unroll` goes through
    networks.resolve_unroll.
    """
    blocks = depth // 4
    if hasattr(config, f"{which}_unroll"):
        unroll = getattr(config, f"{which}_unroll")
        return blocks if unroll is True else min(int(unroll), blocks)
    from deepcrl.networks import resolve_unroll

    return resolve_unroll(int(getattr(config, "network_unroll", 0)), depth)


def resolve_num_devices(config: Any) -> int:
    """config.num_devices, or jax.device_count() when it is 0 (asks JAX for its devices, compiles nothing)."""
    d = int(getattr(config, "num_devices", 1) or 0)
    if d > 0:
        return d
    import jax

    return jax.device_count()


# ----------------------------------------------------------------------------------------------
# The pieces
# ----------------------------------------------------------------------------------------------


def param_counts(config: Any, state_size: int, goal_size: int, action_size: int) -> dict[str, int]:
    """Parameters of the actor, phi and psi, counted from the networks' shapes (networks.network_param_count)."""
    from deepcrl.networks import Actor, ResidualMLP, network_param_count

    z = _sizes(config)
    s, g, a, norm = state_size, goal_size, action_size, z["normalization"]
    critic = dict(width=z["critic_width"], depth=z["critic_depth"], normalization=norm, out_size=z["repr_dim"])
    return {
        "actor": network_param_count(Actor(action_size=a, width=z["actor_width"], depth=z["actor_depth"], normalization=norm), s + g),
        "phi": network_param_count(ResidualMLP(**critic), s + a),
        "psi": network_param_count(ResidualMLP(**critic), g),
    }


def param_bytes(config: Any, state_size: int, goal_size: int, action_size: int) -> int:
    """float32 bytes of the three networks' parameters and log alpha (one seed, one device)."""
    return F32 * (sum(param_counts(config, state_size, goal_size, action_size).values()) + 1)


def optimizer_bytes(config: Any, state_size: int, goal_size: int, action_size: int) -> int:
    """Adam's first and second moments of every parameter (and log alpha), three int32 step counters and
    the agent's step counter (one seed, one device)."""
    return 2 * param_bytes(config, state_size, goal_size, action_size) + 4 * F32


def buffer_bytes(config: Any, state_size: int, goal_size: int, action_size: int, num_devices: int = 1) -> int:
    """Replay buffer bytes on one device (one seed): its num_envs / D columns of every row, plus the two
    int32 counters (replicated)."""
    envs = config.num_envs // num_devices
    per_transition = F32 * (state_size + action_size + goal_size) + F32  # float32 obs/action/goal, int32 episode id
    return config.buffer_size * envs * per_transition + 2 * F32


def _saved_per_layer(policy: str, rolled: bool, remat: bool, weight_grads: bool, mm_bytes: int) -> float:
    """Bytes per [b, W] element saved per Dense layer of a residual block, for one differentiated pass."""
    if not rolled:
        return SAVED_PER_LAYER_UNROLLED * F32
    if remat:
        return SAVED_PER_LAYER_REMAT * F32
    if policy == "dots":
        return mm_bytes + (0.25 * F32 if weight_grads else 0.0)
    return SAVED_PER_LAYER_ALL * F32


def logits_bytes(config: Any, rows: int, batch: int) -> int:
    energy = getattr(config, "energy", "l2")
    loss = getattr(config, "contrastive_loss", "fwd_infonce")
    arrays = LOGITS_ARRAYS.get(energy, 4) + (COLUMN_LOSS_EXTRA if loss in ("bwd_infonce", "sym_infonce") else 0)
    total = arrays * rows * batch * F32
    if energy == "l1":
        total += 2 * rows * batch * config.repr_dim * F32
    return int(total)


def activation_breakdown(config: Any, num_devices: int = 1, remat: bool | None = None) -> dict[str, int]:
    """Saved residuals, working set and logits of one SGD update on one device (one seed), in bytes."""
    z = _sizes(config)
    remat = bool(getattr(config, "remat", False)) if remat is None else remat
    policy = backward_saves_of(config)
    mm_bytes = MATMUL_BYTES.get(getattr(config, "matmul_dtype", "float32"), 4)
    batch = config.batch_size
    b = batch // num_devices
    aw, ad, cw, cd = z["actor_width"], z["actor_depth"], z["critic_width"], z["critic_depth"]
    a_iter, c_iter = blocks_per_iteration(config, ad, "actor"), blocks_per_iteration(config, cd, "critic")
    a_rolled, c_rolled = a_iter < ad // 4, c_iter < cd // 4
    a_policy, c_policy = resolved_policy(policy, ad, a_iter), resolved_policy(policy, cd, c_iter)

    def saved(width: int, depth: int, rolled: bool, pol: str, weight_grads: bool) -> float:
        return depth * b * width * _saved_per_layer(pol, rolled, remat, weight_grads, mm_bytes)

    saved_bytes = (
        saved(aw, ad, a_rolled, a_policy, True)  # actor, actor loss
        + saved(cw, cd, c_rolled, c_policy, False)  # phi inside the actor loss: gradient to the action only
        + 2 * saved(cw, cd, c_rolled, c_policy, True)  # phi and psi, critic loss
    )
    working = (WORKING_CRITIC * cw + WORKING_ACTOR * aw) * b * F32
    return {"saved": int(saved_bytes), "working": int(working), "logits": logits_bytes(config, b, batch)}


def critic_policy(config: Any) -> str:
    """What the critic's residual blocks keep for the backward pass: "remat", "dots" or "all"."""
    if getattr(config, "remat", False):
        return "remat"
    cd = _sizes(config)["critic_depth"]
    return resolved_policy(backward_saves_of(config), cd, blocks_per_iteration(config, cd, "critic"))


def activation_bytes(config: Any, num_devices: int = 1, remat: bool | None = None) -> int:
    """One SGD update's activation memory on one device (one seed); `remat` overrides the config's."""
    return sum(activation_breakdown(config, num_devices, remat).values())


def estimate_memory(config: Any, state_size: int, goal_size: int, action_size: int, num_devices: int | None = None) -> MemoryEstimate:
    """The whole estimate, per device, all seeds. `num_devices` defaults to resolve_num_devices(config)."""
    d = resolve_num_devices(config) if num_devices is None else num_devices
    n = int(getattr(config, "num_seeds", 1))
    s, g, a = state_size, goal_size, action_size
    remat = bool(getattr(config, "remat", False))
    params = param_bytes(config, s, g, a)
    parts = activation_breakdown(config, d, remat)
    return MemoryEstimate(
        num_devices=d,
        num_seeds=n,
        remat=remat,
        backward_saves=critic_policy(config),
        param_bytes=n * params,
        optimizer_bytes=n * optimizer_bytes(config, s, g, a),
        gradient_bytes=n * params,
        buffer_bytes=n * buffer_bytes(config, s, g, a, d) if hasattr(config, "buffer_size") else 0,
        activation_bytes=n * sum(parts.values()),
        activation_bytes_other_remat=n * activation_bytes(config, d, not remat),
        saved_bytes=n * parts["saved"],
        logits_bytes=n * parts["logits"],
        batch_rows_per_device=config.batch_size // d,
        envs_per_device=config.num_envs // d if hasattr(config, "num_envs") else 0,
    )


def format_bytes(n: float) -> str:
    """Bytes in decimal units, as the dry run's other rows: 512 B, 3.25 MB, 1.20 GB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{int(n)} B"


# ----------------------------------------------------------------------------------------------
# FLOPs of one update
# ----------------------------------------------------------------------------------------------
#
# Counted analytically (not by XLA, whose cost analysis counts a scanned block once and whose compile
# of a deep unrolled update takes minutes on a small CPU). Only the Dense layers and the B x B logit
# matrix are counted, at 2 x batch x in x out per Dense forward; an update makes these passes over the
# batch (see agents/crl.py, CRL.update):
#
#     actor loss:  actor forward + backward (3x), phi forward + backward to its input only (2x: the
#                  critic's weights get no gradient here), psi forward (1x)
#     critic loss: phi and psi forward + backward (3x each), logits B x B x repr_dim forward + backward (3x)
#
# LayerNorm, activations and Adam are left out; for width 256 the estimate is within about 5% of
# XLA's count for a fully unrolled update (tests/test_config_files.py checks this).


def dense_forward_flops(batch: int, width: int, depth: int, in_size: int, out_size: int) -> int:
    """2 x batch x in x out summed over a ResidualMLP's Dense layers (input, depth block layers, head)."""
    return 2 * batch * (in_size * width + depth * width * width + width * out_size)


def update_flops(config: Any, state_size: int, goal_size: int, action_size: int) -> int:
    """Analytic FLOPs of one CRL SGD update (actor, alpha and critic), as described above."""
    z, b = _sizes(config), config.batch_size
    actor = dense_forward_flops(b, z["actor_width"], z["actor_depth"], state_size + goal_size, 2 * action_size)
    phi = dense_forward_flops(b, z["critic_width"], z["critic_depth"], state_size + action_size, z["repr_dim"])
    psi = dense_forward_flops(b, z["critic_width"], z["critic_depth"], goal_size, z["repr_dim"])
    logits = 2 * b * b * z["repr_dim"]
    return 3 * actor + 5 * phi + 4 * psi + 3 * logits


# ----------------------------------------------------------------------------------------------
# XLA's view, for validation (compiles; used by tests and benchmarks, never by the dry run)
# ----------------------------------------------------------------------------------------------


def update_memory_from_xla(agent: Any, batch_size: int, donate: bool = True) -> dict[str, int]:
    """XLA's memory analysis of one jitted `agent.update` on abstract inputs (compiles, runs nothing).

    With `donate` (as in a training epoch, which donates its state) the new state overwrites the old one,
    so `temp` holds the gradients and the activations. Returns bytes: temp, argument, output, alias and
    peak = argument + output + temp - alias.
    """
    import jax
    import jax.numpy as jnp

    from deepcrl import replay

    c = agent.config
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    f32 = jnp.float32
    batch = replay.Batch(
        obs=jax.ShapeDtypeStruct((batch_size, c.state_size), f32),
        action=jax.ShapeDtypeStruct((batch_size, c.action_size), f32),
        goal=jax.ShapeDtypeStruct((batch_size, c.goal_size), f32),
        offset=jax.ShapeDtypeStruct((batch_size,), jnp.int32),
    )
    key = jax.eval_shape(lambda: jax.random.PRNGKey(0))
    fn = jax.jit(agent.update, donate_argnums=(0,) if donate else ())
    m = fn.lower(state, batch, key).compile().memory_analysis()
    out = {
        "temp": int(m.temp_size_in_bytes),
        "argument": int(m.argument_size_in_bytes),
        "output": int(m.output_size_in_bytes),
        "alias": int(m.alias_size_in_bytes),
    }
    out["peak"] = out["argument"] + out["output"] + out["temp"] - out["alias"]
    return out


__all__ = [
    "MemoryEstimate",
    "activation_breakdown",
    "activation_bytes",
    "blocks_per_iteration",
    "buffer_bytes",
    "critic_policy",
    "default_backward_saves",
    "dense_forward_flops",
    "estimate_memory",
    "format_bytes",
    "optimizer_bytes",
    "param_bytes",
    "param_counts",
    "resolve_num_devices",
    "update_flops",
    "update_memory_from_xla",
]
