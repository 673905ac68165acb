"""Residual MLP / actor structure, parameter counts, scan variants, deep gradients, tanh-Gaussian."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepcrl.build import validate
from deepcrl.config import Config
from deepcrl.errors import ConfigError
from deepcrl.networks import (
    BACKWARD_SAVES,
    Actor,
    ResidualMLP,
    count_params,
    deterministic_action,
    network_param_count,
    project_kernels,
    resolve_backward_saves,
    sample_tanh_gaussian,
    resolve_unroll,
)

KEY = jax.random.PRNGKey(0)


def _x(b=4, d=5, seed=1):
    return jax.random.normal(jax.random.PRNGKey(seed), (b, d))


def _init(module, x):
    return jax.jit(module.init)(KEY, x)  # one compilation instead of many eager op dispatches


def _apply(module, params, x):
    return jax.jit(module.apply)(params, x)


def _shapes(module, x):
    """Parameter shapes without running (or compiling) the initialisers."""
    return jax.eval_shape(module.init, KEY, x)


# ------------------------------------------------------------------ parameter counts / structure


def param_count(width, depth, in_size, out_size, normalization="layer_norm"):
    """The closed form of ResidualMLP's parameters (out_size None: trunk only), written out here so the
    networks' own count (network_param_count, from their shapes) has something independent to meet.

    layer_norm: input in*W + W + 2W; each of `depth` block layers W*W + W + 2W; head W*out + out.
    none: the same without the LayerNorms' 2W. hyperspherical: no LayerNorm, each Dense has a scale
    [out] beside its bias (in*out + 2 out)."""
    per_unit = {"layer_norm": 3, "none": 1, "hyperspherical": 2}[normalization]  # bias (+ scale) (+ LN scale and bias)
    head_unit = {"layer_norm": 1, "none": 1, "hyperspherical": 2}[normalization]
    head = 0 if not out_size else width * out_size + head_unit * out_size
    return (in_size * width + per_unit * width) + depth * (width * width + per_unit * width) + head


@pytest.mark.parametrize(
    "width,depth,in_size,out_size,normalization",
    [
        (8, 4, 3, 2, "layer_norm"),
        (16, 8, 7, 64, "layer_norm"),
        (16, 8, 7, 64, "none"),
        (32, 12, 1, 1, "none"),
        (5, 16, 9, 3, "layer_norm"),
        (16, 8, 7, 64, "hyperspherical"),
    ],
)
def test_residual_mlp_param_count(width, depth, in_size, out_size, normalization):
    m = ResidualMLP(out_size=out_size, width=width, depth=depth, normalization=normalization)
    params = _shapes(m, jnp.zeros((2, in_size)))
    assert count_params(params) == param_count(width, depth, in_size, out_size, normalization)
    assert network_param_count(m, in_size) == count_params(params)


def test_param_count_closed_form_values():
    # in 3, W 4, depth 4, out 2: input 3*4+4+8=24; 4 layers * (16+4+8)=112; head 4*2+2=10.
    assert param_count(4, 4, 3, 2) == 24 + 112 + 10
    assert param_count(4, 4, 3, 2, "none") == 16 + 80 + 10
    # Linear in depth, quadratic in width.
    assert param_count(256, 8, 10, 64) - param_count(256, 4, 10, 64) == 4 * (256 * 256 + 256 + 512)
    assert param_count(4, 4, 3, None) == 24 + 112


@pytest.mark.parametrize(
    "width,depth,in_size,action_size,normalization", [(8, 4, 6, 2, "layer_norm"), (16, 8, 11, 8, "none"), (8, 4, 6, 2, "hyperspherical")]
)
def test_actor_param_count(width, depth, in_size, action_size, normalization):
    a = Actor(action_size=action_size, width=width, depth=depth, normalization=normalization)
    params = _shapes(a, jnp.zeros((2, in_size)))
    heads = 2 * (width * action_size + (2 if normalization == "hyperspherical" else 1) * action_size)
    assert count_params(params) == param_count(width, depth, in_size, None, normalization) + heads
    assert network_param_count(a, in_size) == count_params(params)
    p = params["params"]
    assert set(p) == {"trunk", "mean", "log_std"}
    assert p["mean"]["kernel"].shape == (width, action_size)
    assert p["log_std"]["kernel"].shape == (width, action_size)


def test_count_params_on_pytree():
    tree = {"a": jnp.zeros((2, 3)), "b": [jnp.zeros(4), {"c": jnp.zeros((1, 2, 5))}]}
    assert count_params(tree) == 6 + 4 + 10


@pytest.mark.parametrize("depth", [4, 12])
def test_block_params_are_stacked(depth):
    width = 8
    params = _init(ResidualMLP(out_size=3, width=width, depth=depth), _x())["params"]
    n = depth // 4
    assert set(params) == {"input_dense", "input_norm", "blocks", "head"}
    blocks = params["blocks"]
    assert set(blocks) == {f"dense_{i}" for i in range(4)} | {f"norm_{i}" for i in range(4)}
    for i in range(4):
        assert blocks[f"dense_{i}"]["kernel"].shape == (n, width, width)
        assert blocks[f"dense_{i}"]["bias"].shape == (n, width)
        assert blocks[f"norm_{i}"]["scale"].shape == (n, width)
    # Every leaf of the scanned blocks has the leading axis depth/4.
    assert all(leaf.shape[0] == n for leaf in jax.tree_util.tree_leaves(blocks))
    if n > 1:  # each block has its own initialisation
        k = np.asarray(blocks["dense_0"]["kernel"])
        assert not np.allclose(k[0], k[1])


def test_initialisation():
    width, in_size = 64, 10
    params = _init(ResidualMLP(out_size=3, width=width, depth=8), jnp.zeros((1, in_size)))["params"]
    # Zero biases everywhere; LayerNorm default (scale 1, bias 0).
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        name = jax.tree_util.keystr(path)
        if "bias" in name:
            assert np.all(np.asarray(leaf) == 0), name
        if "scale" in name:
            assert np.all(np.asarray(leaf) == 1), name
    # variance_scaling(1/3, fan_in, uniform): U(-limit, limit), limit = sqrt(3 * (1/3) / fan_in).
    k = np.asarray(params["input_dense"]["kernel"])
    assert np.max(np.abs(k)) <= math.sqrt(1.0 / in_size) + 1e-6
    kb = np.asarray(params["blocks"]["dense_1"]["kernel"])
    limit = math.sqrt(1.0 / width)
    assert np.max(np.abs(kb)) <= limit + 1e-6
    np.testing.assert_allclose(np.var(kb), limit**2 / 3.0, rtol=0.1)


def test_trunk_only_output():
    m = ResidualMLP(out_size=None, width=16, depth=4)
    x = _x()
    params = _init(m, x)
    assert "head" not in params["params"]
    assert _apply(m, params, x).shape == (4, 16)


def test_output_shapes_and_batch_dims():
    m = ResidualMLP(out_size=64, width=16, depth=8)
    params = _shapes(m, jnp.zeros((1, 5)))
    assert jax.eval_shape(m.apply, params, jnp.zeros((3, 5))).shape == (3, 64)
    assert jax.eval_shape(m.apply, params, jnp.zeros((2, 3, 5))).shape == (2, 3, 64)


# ------------------------------------------------------------------ scan variants


def _out_loss_and_grads(module, params, x):
    def f(p):
        out = module.apply(p, x)
        return jnp.sum(jnp.square(out)), out

    (value, out), grads = jax.jit(jax.value_and_grad(f, has_aux=True))(params)
    return out, value, grads


_SCAN_KW = dict(out_size=3, width=16, depth=12)  # three blocks: unroll=2 leaves a remainder


@pytest.fixture(scope="module")
def rolled_reference():
    """The rolled scan keeping every intermediate for the backward pass (the layout before backward_saves="dots")."""
    x = _x()
    base = ResidualMLP(**_SCAN_KW, backward_saves="all")
    params = jax.jit(base.init)(KEY, x)
    return x, params, _out_loss_and_grads(base, params, x)


@pytest.mark.parametrize(
    "unroll,remat,saves",
    [
        (True, False, "all"),
        (1, True, "all"),
        (True, True, "all"),
        (2, False, "all"),
        (1, False, "dots"),
        (True, False, "dots"),
        (2, False, "dots"),
        (1, True, "dots"),
        (1, False, "auto"),
    ],
)
def test_unroll_remat_and_saves_same_outputs_and_grads(rolled_reference, unroll, remat, saves):
    x, params, (out0, v0, g0) = rolled_reference
    other = ResidualMLP(**_SCAN_KW, unroll=unroll, remat=remat, backward_saves=saves)
    other_params = _shapes(other, x)
    # Same parameter structure and shapes.
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(other_params)
    assert jax.tree_util.tree_map(jnp.shape, params) == jax.tree_util.tree_map(jnp.shape, other_params)

    out1, v1, g1 = _out_loss_and_grads(other, params, x)
    np.testing.assert_allclose(out0, out1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v0, v1, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g0), jax.tree_util.tree_leaves(g1)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_backward_saves_default_is_auto():
    assert ResidualMLP().backward_saves == "auto"
    assert Actor(action_size=2).backward_saves == "auto"
    assert BACKWARD_SAVES == ("auto", "dots", "all")


@pytest.mark.parametrize(
    "depth,unroll,expected",
    [(64, 1, "dots"), (64, 16, "all"), (64, True, "all"), (64, 4, "dots"), (12, 2, "dots"), (4, 1, "all"), (8, 3, "all")],
)
def test_resolve_backward_saves_auto(depth, unroll, expected):
    assert resolve_backward_saves("auto", depth, unroll) == expected
    assert resolve_backward_saves("all", depth, unroll) == "all"
    assert resolve_backward_saves("dots", depth, unroll) == "dots"


def test_backward_saves_bad_value():
    m = ResidualMLP(**_SCAN_KW, backward_saves="some")
    with pytest.raises(ConfigError, match="backward_saves='some'"):
        m.init(KEY, _x())


def test_backward_saves_dots_bfloat16_same_as_all():
    """bfloat16 matmuls: the recomputed LayerNorm / activation give the same forward and gradients."""
    x = _x()
    kw = dict(_SCAN_KW, matmul_dtype="bfloat16")
    ref, dots = ResidualMLP(**kw, backward_saves="all"), ResidualMLP(**kw, backward_saves="dots")
    params = _init(ref, x)
    out0, v0, g0 = _out_loss_and_grads(ref, params, x)
    out1, v1, g1 = _out_loss_and_grads(dots, params, x)
    np.testing.assert_allclose(out0, out1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(v0, v1, rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g0), jax.tree_util.tree_leaves(g1)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_actor_backward_saves_same_grads():
    x = _x()
    a0 = Actor(action_size=2, width=16, depth=8, backward_saves="all")
    a1 = Actor(action_size=2, width=16, depth=8, backward_saves="dots")
    params = _init(a0, x)
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(_init(a1, x))

    def loss(module):
        return lambda p: sum(jnp.sum(jnp.sin(o)) for o in module.apply(p, x))

    g0 = jax.jit(jax.grad(loss(a0)))(params)
    g1 = jax.jit(jax.grad(loss(a1)))(params)
    for a, b in zip(jax.tree_util.tree_leaves(g0), jax.tree_util.tree_leaves(g1)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_actor_unroll_same_output():
    x = _x()
    a0 = Actor(action_size=2, width=16, depth=8)
    a1 = Actor(action_size=2, width=16, depth=8, unroll=True, remat=True)
    params = _init(a0, x)
    for u, v in zip(_apply(a0, params, x), _apply(a1, params, x)):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ depth


def test_depth_256_finite_nonzero_gradients():
    x = jax.random.normal(jax.random.PRNGKey(3), (8, 6))
    m = ResidualMLP(out_size=4, width=32, depth=256)
    params = jax.jit(m.init)(KEY, x)
    assert count_params(params) == param_count(32, 256, 6, 4)
    out, _, grads = _out_loss_and_grads(m, params, x)
    assert np.all(np.isfinite(np.asarray(out)))
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        g = np.asarray(g)
        name = jax.tree_util.keystr(path)
        assert np.all(np.isfinite(g)), name
        assert np.any(g != 0), name
    # Every one of the 64 blocks receives gradient (not only the top ones).
    k = np.asarray(grads["params"]["blocks"]["dense_0"]["kernel"])
    assert k.shape[0] == 64
    assert np.all(np.abs(k).reshape(64, -1).max(axis=1) > 0)


# ------------------------------------------------------------------ ablation variants


@pytest.mark.parametrize("variant", [dict(residual=False), dict(normalization="none"), dict(activation="relu")])
def test_variants_run_and_change_output(variant):
    x = _x()
    kwargs = dict(out_size=3, width=16, depth=8)
    base = ResidualMLP(**kwargs)
    other = ResidualMLP(**kwargs, **variant)
    params = _init(other, x)
    out = _apply(other, params, x)
    assert out.shape == (4, 3)
    assert np.all(np.isfinite(np.asarray(out)))
    if variant.get("normalization") == "none":
        assert "input_norm" not in params["params"]
        assert not any("norm" in k for k in params["params"]["blocks"])
    else:
        # Same structure as the default: compare outputs for the same parameters.
        base_out = _apply(base, params, x)
        assert not np.allclose(out, base_out, atol=1e-4)
        return
    base_out = _apply(base, _init(base, x), x)
    assert not np.allclose(out, base_out, atol=1e-4)


def _column_norms(params):
    """The norm of every output unit's weight vector of every kernel (axis -2), as one flat array."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return np.concatenate([np.linalg.norm(np.asarray(v), axis=-2).ravel() for k, v in leaves if k[-1].key == "kernel"])


def test_hyperspherical_networks_start_on_the_sphere_without_layer_norm():
    x = _x(b=64, d=5) * 3.0
    for module in (
        ResidualMLP(out_size=8, width=16, depth=8, normalization="hyperspherical"),
        Actor(action_size=2, width=16, depth=4, normalization="hyperspherical"),
    ):
        params = _init(module, x)
        np.testing.assert_allclose(_column_norms(params), 1.0, rtol=1e-6)
        assert not any("norm" in "/".join(str(p) for p in k) for k, _ in jax.tree_util.tree_leaves_with_path(params))
        out = _apply(module, params, x)
        assert all(np.all(np.isfinite(np.asarray(o))) for o in jax.tree_util.tree_leaves(out))
    # a hidden layer's pre-activations start at about unit variance, as after a LayerNorm
    m = ResidualMLP(out_size=None, width=64, depth=4, normalization="hyperspherical")
    params = _init(m, x)
    inner = jax.jit(lambda p, h: m.apply(p, h, method=lambda mod, h: mod(h)))(params, x)
    assert 0.2 < float(np.std(np.asarray(inner))) < 5.0


def test_project_kernels_normalises_kernels_only():
    tree = {
        "a": {"kernel": jnp.full((3, 4), 2.0), "bias": jnp.full((4,), 2.0), "scale": jnp.full((4,), 2.0)},
        "blocks": {"dense_0": {"kernel": jnp.arange(1.0, 25.0).reshape(2, 3, 4)}},
    }
    out = project_kernels(tree)
    np.testing.assert_allclose(_column_norms(out), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(out["a"]["bias"], tree["a"]["bias"])
    np.testing.assert_array_equal(out["a"]["scale"], tree["a"]["scale"])
    # each column of each stacked block is scaled by itself: directions kept
    k = np.asarray(tree["blocks"]["dense_0"]["kernel"])
    np.testing.assert_allclose(np.asarray(out["blocks"]["dense_0"]["kernel"]), k / np.linalg.norm(k, axis=-2, keepdims=True), rtol=1e-6)


def test_unknown_activation_in_module_raises():
    with pytest.raises(ConfigError):
        ResidualMLP(out_size=2, width=4, depth=4, activation="gelu").init(KEY, jnp.zeros((1, 3)))


# ------------------------------------------------------------------ validation


# The network settings are checked where they enter, in the run config (deepcrl.build.validate).


def test_network_settings_accept_good():
    for overrides in (
        dict(width=256, depth=4),
        dict(width=1, depth=1024, activation="relu"),
        dict(width=32, depth=8, network_unroll=2),
        dict(width=32, depth=8, network_unroll=4),
    ):
        validate(Config(**overrides))


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (dict(depth=6), "depth=6"),
        (dict(depth=0), "depth=0"),
        (dict(depth=-4), "depth=-4"),
        (dict(width=0), "width=0"),
        (dict(width=-3), "width=-3"),
        (dict(critic_depth=10), "critic_depth=10"),
        (dict(activation="gelu"), "activation='gelu'"),
    ],
)
def test_network_settings_errors(overrides, needle):
    with pytest.raises(ConfigError) as e:
        validate(Config(**overrides))
    msg = str(e.value)
    assert needle in msg
    assert "\n" not in msg
    if "activation" in needle:
        assert "swish" in msg and "relu" in msg
    if "depth" in needle:
        assert "multiple of 4" in msg


def test_network_depth_must_be_an_integer():
    with pytest.raises(ConfigError, match=r"depth=4.0 is not allowed; it must be an integer"):
        validate(Config(depth=4.0))


def test_network_unroll_error():
    with pytest.raises(ConfigError, match="network_unroll=-1"):
        validate(Config(network_unroll=-1))


def test_resolve_unroll_rule():
    assert resolve_unroll(0, 16) == 4 and resolve_unroll(0, 20) == 1  # all blocks up to depth 16, then one per iteration
    assert resolve_unroll(3, 8) == 2 and resolve_unroll(3, 64) == 3  # a given value, at most every block


# ------------------------------------------------------------------ actor / tanh-Gaussian


def test_actor_log_std_range_and_shapes():
    a = Actor(action_size=3, width=16, depth=4)
    x = 50.0 * _x(b=64, d=7)  # large inputs push raw log_std towards saturation
    params = _init(a, x)
    # Scale the log_std head so tanh saturates both ways.
    params["params"]["log_std"]["kernel"] = params["params"]["log_std"]["kernel"] * 100.0
    apply = jax.jit(a.apply)
    mean, log_std = apply(params, x)
    assert mean.shape == (64, 3) and log_std.shape == (64, 3)
    ls = np.asarray(log_std)
    assert np.all(ls >= -5.0) and np.all(ls <= 2.0)
    assert ls.min() < -4.9 and ls.max() > 1.9
    # With a zero raw output, log_std sits at the middle of the range: -1.5.
    params["params"]["log_std"]["kernel"] = jnp.zeros_like(params["params"]["log_std"]["kernel"])
    _, log_std0 = apply(params, x)
    np.testing.assert_allclose(log_std0, -1.5, atol=1e-6)


def test_sample_tanh_gaussian_matches_numpy():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(6, 3)).astype(np.float32)
    log_std = rng.uniform(-2.0, 0.5, size=(6, 3)).astype(np.float32)
    key = jax.random.PRNGKey(11)
    action, log_prob = jax.jit(sample_tanh_gaussian)(key, jnp.asarray(mean), jnp.asarray(log_std))
    assert action.shape == (6, 3) and log_prob.shape == (6,)

    eps = np.asarray(jax.random.normal(key, (6, 3)), dtype=np.float64)
    m, ls = mean.astype(np.float64), log_std.astype(np.float64)
    std = np.exp(ls)
    x = m + std * eps
    a = np.tanh(x)
    logpdf = -0.5 * ((x - m) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    ref = np.sum(logpdf - np.log(1 - a**2 + 1e-6), axis=-1)
    np.testing.assert_allclose(action, a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_prob, ref, rtol=1e-5, atol=1e-5)


def test_actions_in_open_interval_and_deterministic():
    mean = jnp.linspace(-3.0, 3.0, 40).reshape(10, 4)
    log_std = jnp.full((10, 4), 2.0)
    sample = jax.jit(sample_tanh_gaussian)
    action, log_prob = sample(jax.random.PRNGKey(2), mean, log_std)
    assert np.all(np.abs(np.asarray(action)) <= 1.0)
    assert np.all(np.isfinite(np.asarray(log_prob)))
    det = deterministic_action(mean)
    assert np.all(np.abs(np.asarray(det)) < 1.0)
    np.testing.assert_allclose(det, np.tanh(np.asarray(mean)), rtol=1e-6)
    # Moderate std: strictly inside (-1, 1) in float32.
    a2, _ = sample(jax.random.PRNGKey(3), jnp.zeros((100, 2)), jnp.full((100, 2), -1.0))
    assert np.all(np.abs(np.asarray(a2)) < 1.0)


def test_sample_is_reparameterised():
    key = jax.random.PRNGKey(4)

    def f(mean, log_std):
        a, lp = sample_tanh_gaussian(key, mean, log_std)
        return jnp.sum(a) + jnp.sum(lp)

    gm, gs = jax.jit(jax.grad(f, argnums=(0, 1)))(jnp.zeros((3, 2)), jnp.full((3, 2), -1.0))
    assert np.all(np.isfinite(gm)) and np.any(np.asarray(gm) != 0)
    assert np.all(np.isfinite(gs)) and np.any(np.asarray(gs) != 0)
