"""Critic energies and contrastive losses, behind one small registry of names.

Energies map representations ``x = phi(s, a)`` [B, D] and ``y = psi(g)`` [B, D] to a logits matrix
[B, B] with ``logits[i, j] = f(x_i, y_j)``; positives lie on the diagonal (paper section 2).

===========  =========================================
name         f(x, y)
===========  =========================================
``l2``       -||x - y||_2   (default; not squared)
``l2_sq``    -||x - y||_2^2
``l1``       -sum |x - y|
``dot``      x . y
``cosine``   x . y / (|x| |y|)   (rows normalised)
``mrn``      -d_MRN(x, y), a quasimetric (below)
===========  =========================================

``mrn`` is the Metric Residual Network distance (Liu et al. 2023; the paper's appendix A.4 uses it with
the backward InfoNCE: ``--energy mrn --contrastive-loss bwd_infonce``). The representation is split into
K = MRN_COMPONENTS equal chunks along its last axis; for a chunk of size d (x_k, y_k),

    d_k(x, y) = max_j ReLU(x_k[:d/2] - y_k[:d/2])_j  +  sqrt(sum((x_k[d/2:] - y_k[d/2:])^2) + 1e-6)

and d_MRN = mean_k d_k. The first half is asymmetric (d(x, y) != d(y, x) in general), so -d_MRN measures
from the state-action side x = phi(s, a) to the goal side y = psi(g): how far the goal is from (s, a),
not the way back. This follows vivekmyers/horizon_generalization (src/utils.py: 16 components, the
max-ReLU part on each chunk's first half, 1e-6 under the square root); OGBench's GCMRNValue puts the
symmetric part first and uses one component. One difference from that code: there the goal side is
the state-action encoder applied to (future state, future action); here it is psi(g), the goal
encoder every other energy uses, since a goal is a slice of the state and an evaluation goal has no
action.

Contrastive losses on a logits matrix (``lse_row_i = logsumexp_j f_ij``, ``lse_col_j = logsumexp_i f_ij``):

- ``fwd_infonce`` (default): -mean_i(f_ii - lse_row_i); penalty coef * mean_i(lse_row_i^2).
- ``bwd_infonce``: -mean_j(f_jj - lse_col_j); penalty coef * mean_j(lse_col_j^2).
- ``sym_infonce``: the SUM (not the average) of the forward and backward losses, and of both penalties.
- ``binary_nce``: sigmoid cross-entropy with the identity matrix as labels, averaged over all B*B
  entries; penalty: the forward one.

The total loss is ``loss_contrastive + loss_logsumexp``.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from deepcrl.errors import ConfigError

ENERGY_NAMES: tuple[str, ...] = ("l2", "l2_sq", "l1", "dot", "cosine", "mrn")
LOSS_NAMES: tuple[str, ...] = ("fwd_infonce", "bwd_infonce", "sym_infonce", "binary_nce")
DEFAULT_LOSS = "fwd_infonce"

# Floor of the squared distance under the square root of "l2": keeps the gradient finite (zero) at
# x_i == y_j, and changes no value whose distance exceeds 1e-6.
_L2_EPS = 1e-12
# Floor of the norm when "cosine" normalises a row, so an all-zero row gives 0 instead of NaN.
_NORM_EPS = 1e-12


def check_energy_name(name: str) -> str:
    """Return ``name`` if it is a known energy; otherwise raise ``ConfigError`` (one line)."""
    if name not in ENERGY_NAMES:
        raise ConfigError(f"energy={name!r} is not allowed; allowed: {', '.join(ENERGY_NAMES)}")
    return name


def check_loss_name(name: str) -> str:
    """Return ``name`` if it is a known contrastive loss; otherwise raise ``ConfigError`` (one line)."""
    if name not in LOSS_NAMES:
        raise ConfigError(f"loss={name!r} is not allowed; allowed: {', '.join(LOSS_NAMES)}")
    return name


# ----------------------------------------------------------------------------------------------
# Energies. Each pair: the matrix form [B, D] x [B, D] -> [B, B] and the diagonal form -> [B].
# The L2 matrix forms use |x|^2 + |y|^2 - 2 x.y: one matrix multiply instead of a [B, B, D] tensor
# of differences (measured on a 2-core CPU, InfoNCE forward+backward at B=1024, D=64: 11 ms against
# 790 ms; at B=256: 0.7 ms against 6.5 ms). The cancellation it brings near zero distance is about
# 1e-7 x |x|^2, far below the distances that matter; the diagonal forms subtract explicitly.
# ----------------------------------------------------------------------------------------------


def _sq_dist_matrix(x: jax.Array, y: jax.Array) -> jax.Array:
    sq_x = jnp.sum(jnp.square(x), axis=-1)[:, None]
    sq_y = jnp.sum(jnp.square(y), axis=-1)[None, :]
    return jnp.maximum(sq_x + sq_y - 2.0 * jnp.einsum("id,jd->ij", x, y), 0.0)


def _safe_sqrt(sq: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.maximum(sq, _L2_EPS))


def _normalise(v: jax.Array) -> jax.Array:
    norm = jnp.sqrt(jnp.sum(jnp.square(v), axis=-1, keepdims=True))
    return v / jnp.maximum(norm, _NORM_EPS)


def _l2_matrix(x: jax.Array, y: jax.Array) -> jax.Array:
    return -_safe_sqrt(_sq_dist_matrix(x, y))


def _l2_pair(x: jax.Array, y: jax.Array) -> jax.Array:
    return -_safe_sqrt(jnp.sum(jnp.square(x - y), axis=-1))


def _l2_sq_matrix(x: jax.Array, y: jax.Array) -> jax.Array:
    return -_sq_dist_matrix(x, y)


def _l2_sq_pair(x: jax.Array, y: jax.Array) -> jax.Array:
    return -jnp.sum(jnp.square(x - y), axis=-1)


def _l1_matrix(x: jax.Array, y: jax.Array) -> jax.Array:
    return -jnp.sum(jnp.abs(x[:, None, :] - y[None, :, :]), axis=-1)


def _l1_pair(x: jax.Array, y: jax.Array) -> jax.Array:
    return -jnp.sum(jnp.abs(x - y), axis=-1)


def _dot_matrix(x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.einsum("id,jd->ij", x, y)


def _dot_pair(x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.sum(x * y, axis=-1)


def _cosine_matrix(x: jax.Array, y: jax.Array) -> jax.Array:
    return _dot_matrix(_normalise(x), _normalise(y))


def _cosine_pair(x: jax.Array, y: jax.Array) -> jax.Array:
    return _dot_pair(_normalise(x), _normalise(y))


# MRN: components of the representation, and the floor under each component's squared L2 distance
# (horizon_generalization's 1e-6: the gradient stays finite where the two halves coincide).
MRN_COMPONENTS = 16
_MRN_EPS = 1e-6


def _mrn_chunks(v: jax.Array) -> tuple[jax.Array, jax.Array]:
    """[..., D] -> (asymmetric halves, symmetric halves), each [..., K, D / (2K)]."""
    dim = v.shape[-1]
    if dim % (2 * MRN_COMPONENTS):
        raise ConfigError(f"repr_dim={dim} is not allowed with energy='mrn'; it must be a multiple of {2 * MRN_COMPONENTS}")
    chunks = v.reshape(*v.shape[:-1], MRN_COMPONENTS, dim // MRN_COMPONENTS)
    half = dim // MRN_COMPONENTS // 2
    return chunks[..., :half], chunks[..., half:]


def _mrn_matrix(x: jax.Array, y: jax.Array) -> jax.Array:
    # Each coordinate of a chunk's halves as its own [B, K] slice, combined across rows by broadcasting:
    # elementwise work on [B, B, K] arrays (4.5x faster on a CPU than a [B, B, K, d/2] max and an einsum
    # over d/2 = 2 at B = 256, D = 64: 7 ms against 32 ms for the loss and its gradient).
    xa, xs = (v.transpose(2, 0, 1) for v in _mrn_chunks(x))  # [h, B, K]
    ya, ys = (v.transpose(2, 0, 1) for v in _mrn_chunks(y))
    asym = jax.nn.relu(xa[0][:, None] - ya[0][None, :])
    sq = jnp.square(xs[0][:, None] - ys[0][None, :])
    for j in range(1, xa.shape[0]):
        asym = jnp.maximum(asym, jax.nn.relu(xa[j][:, None] - ya[j][None, :]))
        sq = sq + jnp.square(xs[j][:, None] - ys[j][None, :])
    return -jnp.mean(asym + jnp.sqrt(sq + _MRN_EPS), axis=-1)


def _mrn_pair(x: jax.Array, y: jax.Array) -> jax.Array:
    xa, xs = _mrn_chunks(x)
    ya, ys = _mrn_chunks(y)
    asym = jnp.max(jax.nn.relu(xa - ya), axis=-1)
    return -jnp.mean(asym + jnp.sqrt(jnp.sum(jnp.square(xs - ys), axis=-1) + _MRN_EPS), axis=-1)


_ENERGY_MATRIX: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "l2": _l2_matrix,
    "l2_sq": _l2_sq_matrix,
    "l1": _l1_matrix,
    "dot": _dot_matrix,
    "cosine": _cosine_matrix,
    "mrn": _mrn_matrix,
}
_ENERGY_PAIR: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "l2": _l2_pair,
    "l2_sq": _l2_sq_pair,
    "l1": _l1_pair,
    "dot": _dot_pair,
    "cosine": _cosine_pair,
    "mrn": _mrn_pair,
}


def energy_matrix(name: str, x: jax.Array, y: jax.Array) -> jax.Array:
    """Logits [B, B] with ``logits[i, j] = f(x_i, y_j)`` for the energy ``name`` (x, y: [B, D])."""
    return _ENERGY_MATRIX[check_energy_name(name)](x, y)


def pairwise_energy(name: str, x: jax.Array, y: jax.Array) -> jax.Array:
    """Row-wise energy [...] with ``out[i] = f(x_i, y_i)`` (the diagonal of ``energy_matrix``)."""
    return _ENERGY_PAIR[check_energy_name(name)](x, y)


# ----------------------------------------------------------------------------------------------
# Contrastive losses. Each takes the block of rows [b, C] and (for the column-wise losses) the block
# of columns [C, b] of the C x C logits matrix that this device owns: rows and columns
# `offset .. offset + b`. On one device b = C, offset = 0 and both blocks are the whole matrix.
# Each returns (loss_contrastive, loss_logsumexp) averaged over the block; the mean of the blocks'
# values over devices is the whole matrix's value (all blocks have the same size).
# ----------------------------------------------------------------------------------------------

# The losses that classify columns (a goal among all state-actions) and so need the column block.
COLUMN_LOSSES: tuple[str, ...] = ("bwd_infonce", "sym_infonce")


def _row_positives(rows: jax.Array, offset: jax.Array | int) -> jax.Array:
    b = rows.shape[0]
    return rows[jnp.arange(b), offset + jnp.arange(b)]


def _fwd_infonce(rows: jax.Array, cols: jax.Array | None, offset, coef: float) -> tuple[jax.Array, jax.Array]:
    lse = jax.nn.logsumexp(rows, axis=1)
    return -jnp.mean(_row_positives(rows, offset) - lse), coef * jnp.mean(jnp.square(lse))


def _bwd_infonce(rows: jax.Array, cols: jax.Array | None, offset, coef: float) -> tuple[jax.Array, jax.Array]:
    lse = jax.nn.logsumexp(cols, axis=0)
    return -jnp.mean(_row_positives(cols.T, offset) - lse), coef * jnp.mean(jnp.square(lse))


def _sym_infonce(rows: jax.Array, cols: jax.Array | None, offset, coef: float) -> tuple[jax.Array, jax.Array]:
    fwd, fwd_pen = _fwd_infonce(rows, cols, offset, coef)
    bwd, bwd_pen = _bwd_infonce(rows, cols, offset, coef)
    return fwd + bwd, fwd_pen + bwd_pen


def _binary_nce(rows: jax.Array, cols: jax.Array | None, offset, coef: float) -> tuple[jax.Array, jax.Array]:
    # Sigmoid cross-entropy with the identity as labels: softplus(z) - label * z, averaged over all
    # entries. (JaxGCRL's binary NCE passes no labels here, i.e. treats every pair as negative.)
    b, c = rows.shape
    labels = (jnp.arange(c)[None, :] == offset + jnp.arange(b)[:, None]).astype(rows.dtype)
    bce = jax.nn.softplus(rows) - labels * rows
    _, pen = _fwd_infonce(rows, cols, offset, coef)
    return jnp.mean(bce), pen


_LOSSES: dict[str, Callable[..., tuple[jax.Array, jax.Array]]] = {
    "fwd_infonce": _fwd_infonce,
    "bwd_infonce": _bwd_infonce,
    "sym_infonce": _sym_infonce,
    "binary_nce": _binary_nce,
}


def contrastive_loss(
    logits: jax.Array,
    loss: str = DEFAULT_LOSS,
    logsumexp_penalty: float = 0.1,
    *,
    offset: jax.Array | int = 0,
    column_logits: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Total contrastive loss of a logits matrix (positives on the diagonal), and metrics.

    On one device ``logits`` is the whole [B, B] matrix. Data-parallel, it is this device's block of
    rows [b, B] (rows ``offset .. offset + b`` of the global matrix: its own state-actions against
    every device's goals), and ``column_logits`` its block of columns [B, b] (every state-action
    against its own goals), needed by ``bwd_infonce`` and ``sym_infonce`` only.

    Returns ``(loss_contrastive + loss_logsumexp, metrics)``; metrics (scalars):
    ``critic/loss_contrastive``, ``critic/loss_logsumexp`` (the penalty including its coefficient),
    ``critic/accuracy`` (fraction of rows whose argmax is the diagonal), ``critic/logits_pos`` (mean
    diagonal), ``critic/logits_neg`` (mean off-diagonal), ``critic/logsumexp`` (mean row logsumexp).
    Every value is a mean over this block; averaged over devices it is the global matrix's value.
    """
    fn = _LOSSES[check_loss_name(loss)]
    if column_logits is None:
        if loss in COLUMN_LOSSES and logits.shape[0] != logits.shape[1]:
            raise ValueError(f"{loss} on a block of rows {logits.shape} needs column_logits")
        column_logits = logits
    loss_contrastive, loss_lse = fn(logits, column_logits, offset, logsumexp_penalty)

    b, c = logits.shape
    pos = _row_positives(logits, offset)
    n_off = max(b * c - b, 1)
    metrics = {
        "critic/loss_contrastive": loss_contrastive,
        "critic/loss_logsumexp": loss_lse,
        "critic/accuracy": jnp.mean((jnp.argmax(logits, axis=1) == offset + jnp.arange(b)).astype(jnp.float32)),
        "critic/logits_pos": jnp.mean(pos),
        "critic/logits_neg": (jnp.sum(logits) - jnp.sum(pos)) / n_off,
        "critic/logsumexp": jnp.mean(jax.nn.logsumexp(logits, axis=1)),
    }
    return loss_contrastive + loss_lse, metrics


__all__ = [
    "COLUMN_LOSSES",
    "DEFAULT_LOSS",
    "ENERGY_NAMES",
    "LOSS_NAMES",
    "MRN_COMPONENTS",
    "check_energy_name",
    "check_loss_name",
    "contrastive_loss",
    "energy_matrix",
    "pairwise_energy",
]
