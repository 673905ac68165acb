"""Deep residual MLPs for the critic encoders and the actor, plus the tanh-Gaussian helpers.

Architecture (paper section 5)::

    input -> Dense(W) -> LayerNorm -> act                  (input layer, not counted in depth)
          -> ResidualBlock x (depth / 4)
          -> Dense(out_size)                               (linear head; omitted when out_size is None)

    ResidualBlock(x): h = x; 4 times: h = act(LayerNorm(Dense(W)(h))); return x + h

"Depth" counts the Dense layers inside residual blocks, so it is a positive multiple of 4.

Normalisation (``normalization``, a name in NORMALIZATIONS):

- ``layer_norm`` (the paper's): LayerNorm after every Dense, as drawn above.
- ``none``: no normalisation (the paper's ablation; ``--no-layer-norm``).
- ``hyperspherical`` (the paper's appendix A.6, after SimbaV2, Lee et al. 2025): no LayerNorm; every
  Dense kernel [in, out] has unit-norm columns (each output unit's weight vector lies on the unit
  sphere), at init (``unit_kernel_init``) and after every optimiser step (``project_kernels``, applied by
  the agents' optimisers); each Dense has a learnable per-unit scale (init 1) beside its bias,
  ``y = scale * (x @ kernel) + bias``; and every Dense but the input layer sees its input projected
  onto the sphere of radius sqrt(size) (``sphere``: unit RMS, the normalised activations), so with unit
  kernels its pre-activations start at about unit variance, as after a LayerNorm. Taken from SimbaV2:
  the weight projection (over axis 0 of each kernel, target networks not renormalised), the learnable
  scalers and the normalised activations; not taken: its dropped biases, its LERP residual
  ``l2n(h + alpha (MLP(h) - h))`` (our residual blocks stay the paper's ``x + h``), the shifted input
  embedding (our input layer sees the raw observation, whose magnitude is a position) and its
  orthogonal init.

The residual blocks' parameters are stacked along a leading axis of length ``depth // 4`` and applied
with ``nn.scan``, so the traced program (and compile time) does not grow with depth when the loop is
rolled (``unroll=1``). ``unroll=True`` unrolls it fully; the parameter tree is the same either way.

Parameter tree of ``ResidualMLP``::

    {"input_dense": {kernel, bias}, "input_norm": {scale, bias},     # input_norm only with layer_norm
     "blocks": {"dense_0".."dense_3": {kernel [n, W, W], bias [n, W]},
                "norm_0".."norm_3": {scale [n, W], bias [n, W]}},    # n = depth // 4
     "head": {kernel, bias}}                                          # only when out_size is not None

(with ``hyperspherical``: no ``norm_*`` entries, and each Dense has a ``scale`` [.., out] beside kernel
and bias.) ``Actor`` wraps a trunk-only ``ResidualMLP`` (submodule ``"trunk"``) and puts two separate
linear heads on it, ``"mean"`` and ``"log_std"`` (each Dense(action_size)). Parameter counts come from
the networks themselves (``network_param_count``: ``jax.eval_shape`` of their init, no arrays made).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from deepcrl.errors import ConfigError

ACTIVATIONS: tuple[str, ...] = ("swish", "relu")
NORMALIZATIONS: tuple[str, ...] = ("layer_norm", "none", "hyperspherical")

LOG_STD_MIN = -5.0
LOG_STD_MAX = 2.0
TANH_LOG_PROB_EPS = 1e-6


def kernel_init() -> Callable[..., jax.Array]:
    """Kernel initialiser of every Dense layer: variance_scaling(1/3, fan_in, uniform)."""
    return nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


MATMUL_DTYPES: dict[str, Any] = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

_SPHERE_EPS = 1e-8  # SimbaV2's floor under a norm before dividing by it


def check_normalization(name: str) -> str:
    if name not in NORMALIZATIONS:
        raise ConfigError(f"normalization={name!r} is not allowed; allowed: {', '.join(NORMALIZATIONS)}")
    return name


def _unit_columns(kernel: jax.Array) -> jax.Array:
    """`kernel` [.., in, out] with each output unit's weight vector (a column, axis -2) scaled to norm 1."""
    norm = jnp.sqrt(jnp.sum(jnp.square(kernel), axis=-2, keepdims=True))
    return kernel / jnp.maximum(norm, _SPHERE_EPS)


def unit_kernel_init() -> Callable[..., jax.Array]:
    """kernel_init() with each column then projected onto the unit sphere (hyperspherical networks)."""
    base = kernel_init()
    return lambda key, shape, dtype=jnp.float32: _unit_columns(base(key, shape, dtype))


def project_kernels(params: Any) -> Any:
    """`params` with every leaf named "kernel" given unit-norm columns (axis -2; a stacked block kernel
    [n, in, out] per block); other leaves unchanged. The step a hyperspherical network takes after every
    optimiser update (agents.common.optimizer)."""

    def project(path, leaf):
        last = path[-1] if path else None
        return _unit_columns(leaf) if getattr(last, "key", None) == "kernel" else leaf

    return jax.tree_util.tree_map_with_path(project, params)


def sphere(h: jax.Array) -> jax.Array:
    """`h` projected onto the sphere of radius sqrt(size) along its last axis (RMS 1): the input of every
    hyperspherical Dense but the input layer."""
    norm = jnp.sqrt(jnp.sum(jnp.square(h), axis=-1, keepdims=True))
    return h * (math.sqrt(h.shape[-1]) / jnp.maximum(norm, _SPHERE_EPS))


class SphereDense(nn.Module):
    """Dense with a unit-norm-column kernel (kept so by `project_kernels`) and a learnable per-unit scale:
    ``scale * (x @ kernel) + bias``; parameters float32, the multiply in `matmul_dtype`, the output float32."""

    features: int
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", unit_kernel_init(), (x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        scale = self.param("scale", nn.initializers.ones, (self.features,), jnp.float32)
        dtype = MATMUL_DTYPES[self.matmul_dtype]
        y = jnp.dot(x.astype(dtype), kernel.astype(dtype)).astype(jnp.float32)
        return y * scale + bias


def _layer(features: int, name: str, matmul_dtype: str, normalization: str, first: bool = False) -> Callable[[jax.Array], jax.Array]:
    """One Dense of a network with `normalization`, followed by its LayerNorm where it has one (no
    activation): what every layer of ResidualMLP and the actor's heads is. `first`: the input layer
    (a hyperspherical input layer sees the raw input, every other one its input on the sphere)."""
    if normalization == "hyperspherical":
        dense = SphereDense(features, matmul_dtype, name=name)
        return dense if first else (lambda h: dense(sphere(h)))
    dense = _dense(features, name, matmul_dtype)
    return dense


# What the backward pass keeps of each residual block (``ResidualMLP.backward_saves``): "dots" keeps the
# four matmul outputs and recomputes bias, LayerNorm and activation from them (cheap elementwise work);
# "all" keeps everything autodiff saves by default (about seven [B, W] arrays per layer). In a scan of
# more than one iteration every kept value is written into a [depth/4, B, W] stack by the forward loop
# and read back by the backward loop, which made the rolled scan ~30% slower than the unrolled network at
# depth 64 (docs/benchmarks.md); a single-iteration (fully unrolled) scan stores nothing of the kind.
# "auto" (the default): "dots" when the scan has more than one iteration, else "all".
BACKWARD_SAVES: tuple[str, ...] = ("auto", "dots", "all")


def _dense(features: int, name: str, matmul_dtype: str = "float32") -> nn.Dense:
    """Dense layer with float32 parameters; inputs and kernel are cast to `matmul_dtype` for the multiply."""
    return nn.Dense(
        features,
        kernel_init=kernel_init(),
        bias_init=nn.initializers.zeros,
        name=name,
        dtype=MATMUL_DTYPES[matmul_dtype],
        param_dtype=jnp.float32,
    )


def _layer_norm(name: str) -> nn.LayerNorm:
    """LayerNorm computed and returned in float32 whatever its input's dtype (statistics stay exact)."""
    return nn.LayerNorm(name=name, dtype=jnp.float32, param_dtype=jnp.float32)


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation function called ``name`` ("swish" or "relu")."""
    if name == "swish":
        return nn.swish
    if name == "relu":
        return nn.relu
    raise ConfigError(f"activation={name!r} is not allowed; allowed: {', '.join(ACTIVATIONS)}")


# Blocks per scan iteration when the run config's `network_unroll` is 0. Measured on a 2-core CPU
# (docs/benchmarks.md): a fully unrolled network is faster for shallow nets, while compile time grows
# with unrolled depth.
UNROLL_ALL_UP_TO_DEPTH = 16
DEEP_UNROLL = 1


def resolve_unroll(unroll: int, depth: int) -> int:
    """Residual blocks per scan iteration of a network of `depth` layers: `unroll` (at most all blocks)
    when positive, else every block up to depth UNROLL_ALL_UP_TO_DEPTH and DEEP_UNROLL beyond."""
    blocks = depth // 4
    if unroll > 0:
        return min(unroll, blocks)
    return blocks if depth <= UNROLL_ALL_UP_TO_DEPTH else DEEP_UNROLL


def network_param_count(module: nn.Module, in_size: int) -> int:
    """Parameters of `module` (a ResidualMLP or an Actor) on inputs of `in_size`, counted from the
    shapes its init would make (``jax.eval_shape``: nothing is computed or allocated)."""
    shapes = jax.eval_shape(module.init, jax.random.PRNGKey(0), jax.ShapeDtypeStruct((1, in_size), jnp.float32))
    return count_params(shapes)


def count_params(params: Any) -> int:
    """Total number of scalars in a pytree of arrays."""
    return int(sum(math.prod(getattr(leaf, "shape", None) or jnp.shape(leaf)) for leaf in jax.tree_util.tree_leaves(params)))


class ResidualBlock(nn.Module):
    """Four (Dense -> normalisation -> act) layers with a skip connection after the last activation.

    Written as a scan body: ``(carry, _) -> (carry, None)``.
    """

    width: int
    normalization: str = "layer_norm"
    activation: str = "swish"
    residual: bool = True
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, x: jax.Array, _: Any = None) -> tuple[jax.Array, None]:
        act = get_activation(self.activation)
        h = x
        for i in range(4):
            h = _layer(self.width, f"dense_{i}", self.matmul_dtype, self.normalization)(h)
            if self.normalization == "layer_norm":
                h = _layer_norm(f"norm_{i}")(h)
            h = act(h).astype(jnp.float32)
        return (x + h if self.residual else h), None


def resolve_backward_saves(backward_saves: str, depth: int, unroll: int | bool) -> str:
    """ "dots" or "all": what ``backward_saves`` means for a scan of ``depth // 4`` blocks, ``unroll`` per iteration."""
    if backward_saves not in BACKWARD_SAVES:
        raise ConfigError(f"backward_saves={backward_saves!r} is not allowed; allowed: {', '.join(BACKWARD_SAVES)}")
    if backward_saves != "auto":
        return backward_saves
    iterations = 1 if unroll is True else -(-(depth // 4) // max(int(unroll), 1))
    return "dots" if iterations > 1 else "all"


def _block_class(remat: bool, backward_saves: str) -> type[nn.Module]:
    """The residual block, wrapped in ``nn.remat`` with the checkpoint policy that ``backward_saves`` names."""
    if remat:
        return nn.remat(ResidualBlock)
    if backward_saves == "dots":
        # Inside a scan the recomputation cannot be CSE'd into the forward pass, so prevent_cse is not needed.
        return nn.remat(ResidualBlock, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable, prevent_cse=False)
    if backward_saves == "all":
        return ResidualBlock
    raise ConfigError(f"backward_saves={backward_saves!r} is not allowed; allowed: {', '.join(BACKWARD_SAVES)}")


class Trunk(nn.Module):
    """The settings of a residual trunk, declared once: `ResidualMLP` and `Actor` inherit them."""

    width: int = 256
    depth: int = 4
    normalization: str = "layer_norm"  # layer_norm, none or hyperspherical (NORMALIZATIONS)
    activation: str = "swish"
    residual: bool = True
    unroll: int | bool = 1
    remat: bool = False
    matmul_dtype: str = "float32"  # float32 or bfloat16 multiplies; parameters, LayerNorm and the output stay float32
    backward_saves: str = "auto"  # see BACKWARD_SAVES; remat=True overrides it (nothing kept, whole block recomputed)

    def trunk_settings(self) -> dict[str, Any]:
        """This module's trunk settings, to build a `ResidualMLP` with the same trunk."""
        return {name: getattr(self, name) for name in TRUNK_SETTINGS}


TRUNK_SETTINGS = ("width", "depth", "normalization", "activation", "residual", "unroll", "remat", "matmul_dtype", "backward_saves")


class ResidualMLP(Trunk):
    """Deep residual MLP (see the module docstring). ``out_size=None`` returns the trunk features [.., W]."""

    out_size: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = get_activation(self.activation)
        check_normalization(self.normalization)
        h = _layer(self.width, "input_dense", self.matmul_dtype, self.normalization, first=True)(x)
        if self.normalization == "layer_norm":
            h = _layer_norm("input_norm")(h)
        h = act(h).astype(jnp.float32)

        block_cls = _block_class(self.remat, resolve_backward_saves(self.backward_saves, self.depth, self.unroll))
        blocks = nn.scan(block_cls, variable_axes={"params": 0}, split_rngs={"params": True}, length=self.depth // 4, unroll=self.unroll)
        h, _ = blocks(
            width=self.width,
            normalization=self.normalization,
            activation=self.activation,
            residual=self.residual,
            matmul_dtype=self.matmul_dtype,
            name="blocks",
        )(h, None)

        if self.out_size is None:
            return h
        return _layer(self.out_size, "head", self.matmul_dtype, self.normalization)(h).astype(jnp.float32)


class Actor(Trunk):
    """Tanh-Gaussian policy network: returns ``(mean, log_std)``, each [.., action_size].

    A trunk-only ``ResidualMLP`` (submodule ``"trunk"``, the same trunk settings) followed by two
    separate linear heads (``"mean"``, ``"log_std"``). log_std = -5 + 0.5 * 7 * (tanh(raw) + 1), i.e. in [-5, 2].
    """

    action_size: int | None = None  # required

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        if not isinstance(self.action_size, int) or self.action_size <= 0:
            raise ConfigError(f"action_size={self.action_size!r} is not allowed; the actor needs a positive action size")
        h = ResidualMLP(out_size=None, name="trunk", **self.trunk_settings())(x)
        mean = _layer(self.action_size, "mean", self.matmul_dtype, self.normalization)(h).astype(jnp.float32)
        raw = _layer(self.action_size, "log_std", self.matmul_dtype, self.normalization)(h).astype(jnp.float32)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw) + 1.0)
        return mean, log_std


def sample_tanh_gaussian(
    key: jax.Array | None, mean: jax.Array, log_std: jax.Array, eps: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """Reparameterised sample of a = tanh(mean + std * eps) and its log-probability.

    log_prob = sum over the last axis of [Normal(mean, std).logpdf(x) - log(1 - a^2 + 1e-6)],
    with x = mean + std * eps, eps ~ N(0, I) drawn from `key` (or given as `eps`).
    Returns (action [.., A], log_prob [..]).
    """
    std = jnp.exp(log_std)
    if eps is None:
        eps = jax.random.normal(key, jnp.shape(mean), dtype=jnp.result_type(mean))
    action = jnp.tanh(mean + std * eps)
    return action, _tanh_gaussian_log_density(eps, log_std, action)


def _tanh_gaussian_log_density(eps: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """sum over the last axis of [Normal(mean, std).logpdf(x) - log(1 - a^2 + 1e-6)], the Gaussian's
    log-density written in terms of eps = (x - mean) / std, for a = tanh(x)."""
    gauss_logpdf = -0.5 * jnp.square(eps) - log_std - 0.5 * jnp.log(2.0 * jnp.pi)
    return jnp.sum(gauss_logpdf - jnp.log(1.0 - jnp.square(action) + TANH_LOG_PROB_EPS), axis=-1)


ACTION_CLIP = 1.0 - 1e-6  # given actions are clipped to +-this before atanh (tanh_gaussian_log_prob)


def tanh_gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """log pi(action) for a = tanh(x), x ~ N(mean, exp(log_std)^2), summed over the last axis. [..]"""
    action = jnp.clip(action, -ACTION_CLIP, ACTION_CLIP)
    eps = (jnp.arctanh(action) - mean) * jnp.exp(-log_std)
    return _tanh_gaussian_log_density(eps, log_std, action)


def deterministic_action(mean: jax.Array) -> jax.Array:
    """The evaluation action tanh(mean)."""
    return jnp.tanh(mean)


__all__ = [
    "ACTIVATIONS",
    "Actor",
    "BACKWARD_SAVES",
    "NORMALIZATIONS",
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "ResidualBlock",
    "ResidualMLP",
    "TRUNK_SETTINGS",
    "Trunk",
    "count_params",
    "deterministic_action",
    "get_activation",
    "kernel_init",
    "network_param_count",
    "project_kernels",
    "sphere",
    "unit_kernel_init",
    "check_normalization",
    "resolve_backward_saves",
    "resolve_unroll",
    "sample_tanh_gaussian",
    "tanh_gaussian_log_prob",
]
