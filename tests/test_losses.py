"""Energies and contrastive losses against hand-written float64 NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from deepcrl.errors import ConfigError
from deepcrl.losses import ENERGY_NAMES, LOSS_NAMES, contrastive_loss, energy_matrix, pairwise_energy

RTOL = 1e-5
ATOL = 1e-5


def _inputs(b=7, d=5, seed=0):
    """Two [b, d] arrays; MRN's tests ask for d = 32 (16 components of 2 halves)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(b, d)), rng.normal(size=(b, d))


def _np_energy(name, x, y):
    b = x.shape[0]
    out = np.zeros((b, b))
    for i in range(b):
        for j in range(b):
            u, v = x[i], y[j]
            if name == "l2":
                out[i, j] = -np.sqrt(np.sum((u - v) ** 2))
            elif name == "l2_sq":
                out[i, j] = -np.sum((u - v) ** 2)
            elif name == "l1":
                out[i, j] = -np.sum(np.abs(u - v))
            elif name == "dot":
                out[i, j] = np.dot(u, v)
            elif name == "cosine":
                out[i, j] = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
            elif name == "mrn":
                out[i, j] = -_np_mrn(u, v)
            else:
                raise AssertionError(name)
    return out


def _np_mrn(u, v, components=16):
    """The MRN distance of two vectors, written out: mean over components of the max-ReLU of the first
    half's differences plus the L2 distance of the second half (1e-6 under the root)."""
    out = []
    for cu, cv in zip(np.split(u, components), np.split(v, components)):
        h = len(cu) // 2
        out.append(np.max(np.maximum(cu[:h] - cv[:h], 0.0)) + np.sqrt(np.sum((cu[h:] - cv[h:]) ** 2) + 1e-6))
    return np.mean(out)


def _dim(name):
    return 32 if name == "mrn" else 5


def _np_lse(a, axis):
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def _np_loss(logits, loss, coef):
    b = logits.shape[0]
    diag = np.diag(logits)
    lse_r = _np_lse(logits, 1)
    lse_c = _np_lse(logits, 0)
    fwd = -np.mean(diag - lse_r)
    bwd = -np.mean(diag - lse_c)
    pen_f = coef * np.mean(lse_r**2)
    pen_b = coef * np.mean(lse_c**2)
    if loss == "fwd_infonce":
        c, p = fwd, pen_f
    elif loss == "bwd_infonce":
        c, p = bwd, pen_b
    elif loss == "sym_infonce":
        c, p = fwd + bwd, pen_f + pen_b
    elif loss == "binary_nce":
        labels = np.eye(b)
        sig = 1.0 / (1.0 + np.exp(-logits))
        c = -np.mean(labels * np.log(sig) + (1 - labels) * np.log(1 - sig))
        p = pen_f
    else:
        raise AssertionError(loss)
    off = logits[~np.eye(b, dtype=bool)]
    metrics = {
        "critic/loss_contrastive": c,
        "critic/loss_logsumexp": p,
        "critic/accuracy": np.mean([np.argmax(logits[i]) == i for i in range(b)]),
        "critic/logits_pos": np.mean(diag),
        "critic/logits_neg": np.mean(off),
        "critic/logsumexp": np.mean(lse_r),
    }
    return c + p, metrics


def test_names():
    assert ENERGY_NAMES == ("l2", "l2_sq", "l1", "dot", "cosine", "mrn")
    assert LOSS_NAMES == ("fwd_infonce", "bwd_infonce", "sym_infonce", "binary_nce")


@pytest.mark.parametrize("name", ENERGY_NAMES)
def test_energy_matrix_matches_numpy(name):
    x, y = _inputs(d=_dim(name))
    got = np.asarray(energy_matrix(name, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)))
    assert got.shape == (7, 7)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, _np_energy(name, x, y), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ENERGY_NAMES)
def test_pairwise_energy_is_matrix_diagonal(name):
    x, y = _inputs(d=_dim(name), seed=1)
    xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    diag = np.diag(np.asarray(energy_matrix(name, xj, yj)))
    pair = np.asarray(pairwise_energy(name, xj, yj))
    assert pair.shape == (7,)
    np.testing.assert_allclose(pair, diag, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(pair, np.diag(_np_energy(name, x, y)), rtol=RTOL, atol=ATOL)


def test_l2_gradient_finite_at_coincident_points():
    x, y = _inputs(b=4, d=3, seed=2)
    y[1] = x[1]  # one diagonal entry with zero distance
    y[2] = x[0]  # one off-diagonal entry with zero distance
    xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)

    @jax.jit
    def grads(a, b):
        gm = jax.grad(lambda u, v: jnp.sum(energy_matrix("l2", u, v)), argnums=(0, 1))(a, b)
        gp = jax.grad(lambda u, v: jnp.sum(pairwise_energy("l2", u, v)), argnums=(0, 1))(a, b)
        gl = jax.grad(lambda u: contrastive_loss(energy_matrix("l2", u, b))[0])(a)
        return gm, gp, gl

    for g in jax.tree_util.tree_leaves(grads(xj, yj)):
        assert np.all(np.isfinite(np.asarray(g)))
    # Value at zero distance is (essentially) zero.
    assert abs(float(energy_matrix("l2", xj, yj)[1, 1])) < 1e-5


def test_mrn_is_a_quasimetric_and_asymmetric():
    rng = np.random.default_rng(9)
    x, y, z = (jnp.asarray(rng.normal(size=(50, 32)), jnp.float32) for _ in range(3))
    d = lambda a, b: -np.asarray(pairwise_energy("mrn", a, b))  # noqa: E731
    # zero (up to the 1e-6 floor under the root: sqrt(1e-6) = 1e-3) from a point to itself
    np.testing.assert_allclose(d(x, x), 1e-3, rtol=1e-4)
    # the triangle inequality, with the floor counted once more on the left
    assert np.all(d(x, z) <= d(x, y) + d(y, z) + 1e-3)
    # asymmetric: the way there is not the way back
    assert np.max(np.abs(d(x, y) - d(y, x))) > 0.1
    # the symmetric half alone (first halves equal) is symmetric
    same = np.asarray(x).reshape(50, 16, 2).copy()
    other = np.asarray(y).reshape(50, 16, 2).copy()
    other[..., 0] = same[..., 0]
    a, b = jnp.asarray(same.reshape(50, 32)), jnp.asarray(other.reshape(50, 32))
    np.testing.assert_allclose(d(a, b), d(b, a), rtol=1e-6)


def test_mrn_needs_a_representation_of_32_multiples():
    with pytest.raises(ConfigError, match="repr_dim=40 .* multiple of 32"):
        energy_matrix("mrn", jnp.zeros((2, 40)), jnp.zeros((2, 40)))


def test_cosine_zero_row_is_finite():
    x = jnp.zeros((3, 4))
    y = jnp.ones((3, 4))
    assert np.all(np.isfinite(np.asarray(energy_matrix("cosine", x, y))))


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("coef", [0.0, 0.1, 0.7])
def test_contrastive_loss_matches_numpy(loss, coef):
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 6)) * 2.0
    logits[np.arange(6), np.arange(6)] += 1.5  # a few rows classified correctly, some not
    total, metrics = contrastive_loss(jnp.asarray(logits, jnp.float32), loss=loss, logsumexp_penalty=coef)
    ref_total, ref_metrics = _np_loss(logits, loss, coef)
    np.testing.assert_allclose(float(total), ref_total, rtol=RTOL, atol=ATOL)
    assert set(metrics) == set(ref_metrics)
    for k, v in ref_metrics.items():
        np.testing.assert_allclose(float(metrics[k]), v, rtol=RTOL, atol=ATOL, err_msg=k)
    accuracy = ref_metrics["critic/accuracy"]
    assert 0.0 < accuracy < 1.0  # the test exercises both outcomes


def test_default_loss_is_forward_infonce_with_penalty_01():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(5, 5))
    total, _ = contrastive_loss(jnp.asarray(logits, jnp.float32))
    ref, _ = _np_loss(logits, "fwd_infonce", 0.1)
    np.testing.assert_allclose(float(total), ref, rtol=RTOL)


def test_symmetric_is_sum_of_forward_and_backward():
    rng = np.random.default_rng(5)
    logits = jnp.asarray(rng.normal(size=(5, 5)), jnp.float32)
    s, _ = contrastive_loss(logits, "sym_infonce")
    f, _ = contrastive_loss(logits, "fwd_infonce")
    b, _ = contrastive_loss(logits, "bwd_infonce")
    np.testing.assert_allclose(float(s), float(f) + float(b), rtol=1e-6)


def test_backward_is_forward_of_transpose():
    rng = np.random.default_rng(6)
    logits = jnp.asarray(rng.normal(size=(5, 5)), jnp.float32)
    b, _ = contrastive_loss(logits, "bwd_infonce")
    f, _ = contrastive_loss(logits.T, "fwd_infonce")
    np.testing.assert_allclose(float(b), float(f), rtol=1e-6)


def test_loss_is_differentiable():
    x, y = _inputs(b=8, d=32, seed=7)
    xj, yj = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)

    @jax.jit  # one compilation for all combinations
    def all_grads(a, b):
        return {
            (energy, loss): jax.grad(lambda u: contrastive_loss(energy_matrix(energy, u, b), loss)[0])(a)
            for energy in ENERGY_NAMES
            for loss in LOSS_NAMES
        }

    grads = all_grads(xj, yj)
    assert len(grads) == len(ENERGY_NAMES) * len(LOSS_NAMES)
    for combo, g in grads.items():
        g = np.asarray(g)
        assert np.all(np.isfinite(g)), combo
        assert np.any(g != 0), combo


def test_loss_is_jittable():
    x, y = _inputs(b=8, d=4, seed=8)
    fn = jax.jit(lambda a, b: contrastive_loss(energy_matrix("l2", a, b), "sym_infonce"))
    total, metrics = fn(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32))
    assert np.isfinite(float(total)) and set(metrics) == {
        "critic/loss_contrastive",
        "critic/loss_logsumexp",
        "critic/accuracy",
        "critic/logits_pos",
        "critic/logits_neg",
        "critic/logsumexp",
    }


def test_unknown_names_raise_config_error():
    x = jnp.ones((2, 3))
    with pytest.raises(ConfigError) as e:
        energy_matrix("euclid", x, x)
    msg = str(e.value)
    assert "'euclid'" in msg and "l2" in msg and "cosine" in msg and "\n" not in msg
    with pytest.raises(ConfigError) as e:
        pairwise_energy("bogus", x, x)
    assert "'bogus'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        contrastive_loss(jnp.zeros((2, 2)), loss="flatnce")
    msg = str(e.value)
    assert "'flatnce'" in msg and "fwd_infonce" in msg and "binary_nce" in msg and "\n" not in msg
