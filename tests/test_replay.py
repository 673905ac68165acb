"""Replay buffer: FIFO ring insertion, hindsight relabelling within trajectories, the offset law, memory.

Buffers are built with known contents: every row stores its global step counter `t` and episode id, so
a sampled (obs, goal) pair identifies the row it came from and the row its goal came from.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from deepcrl import replay

# obs = (t, env, episode_id, 0); next_achieved = (t + 1, episode_id): the "state" at t + 1.
STATE, ACTION, GOAL = 4, 1, 2


def _chunk(ts: np.ndarray, episode_ids: np.ndarray) -> replay.Transition:
    """A [steps, num_envs] chunk whose rows carry their step counter and episode id."""
    steps, num_envs = episode_ids.shape
    env = np.broadcast_to(np.arange(num_envs), (steps, num_envs))
    t = np.broadcast_to(ts[:, None], (steps, num_envs))
    obs = np.stack([t, env, episode_ids, np.zeros_like(t)], -1).astype(np.float32)
    action = (t * 100 + env)[..., None].astype(np.float32)
    next_achieved = np.stack([t + 1, episode_ids], -1).astype(np.float32)
    return replay.Transition(
        obs=jnp.asarray(obs),
        action=jnp.asarray(action),
        next_achieved=jnp.asarray(next_achieved),
        episode_id=jnp.asarray(episode_ids, jnp.int32),
    )


def _episode_ids(lengths: list[int], total: int) -> np.ndarray:
    """Episode id of each of `total` consecutive steps, episodes of the given lengths (last one open)."""
    ids = np.repeat(np.arange(len(lengths)), lengths)
    assert len(ids) >= total
    return ids[:total]


# These tests compile many small programs and run each briefly: skip the slow XLA optimisations.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@functools.partial(jax.jit, static_argnums=(2, 3), compiler_options=FAST_COMPILE)
def _sample(buffer, key, batch_size, gamma):
    return replay.sample(buffer, key, batch_size, gamma)


_insert = jax.jit(replay.insert, compiler_options=FAST_COMPILE)
_truncated_geometric = jax.jit(replay.truncated_geometric, static_argnums=1, compiler_options=FAST_COMPILE)


# ------------------------------------------------------------------------------------ insertion


def test_insert_fifo_wraparound_keeps_newest_rows():
    capacity, num_envs = 7, 2
    buf = replay.init_buffer(capacity, num_envs, STATE, ACTION, GOAL)
    assert int(buf.count) == 0 and int(buf.insert_pos) == 0
    assert buf.capacity == capacity and buf.num_envs == num_envs
    assert np.all(np.asarray(buf.data.episode_id) == -1)

    written = 0
    # chunk sizes 3, 3, 5, 5, 3: fills, then wraps inside a chunk, then keeps overwriting the oldest rows
    for size, want_count in zip([3, 3, 5, 5, 3], [3, 6, 7, 7, 7]):
        ts = np.arange(written, written + size)
        buf = _insert(buf, _chunk(ts, np.zeros((size, num_envs), np.int64)))
        written += size
        host = jax.device_get(buf)
        assert int(host.count) == want_count
        assert int(host.insert_pos) == written % capacity
        # The rows in chronological order (oldest first) are exactly the newest `count` steps.
        oldest = (int(host.insert_pos) - int(host.count)) % capacity
        rows = [(oldest + c) % capacity for c in range(int(host.count))]
        t_held = host.data.obs[rows, :, 0]
        want = np.arange(written - int(host.count), written)
        np.testing.assert_array_equal(t_held, np.stack([want, want], 1))
        np.testing.assert_array_equal(host.data.obs[rows, :, 1], np.tile([0, 1], (len(rows), 1)))
        np.testing.assert_array_equal(host.data.next_achieved[rows, :, 0], t_held + 1)
        np.testing.assert_array_equal(host.data.action[rows, :, 0], t_held * 100 + np.array([0, 1]))
        # Rows never written still hold the empty marker.
        empty = sorted(set(range(capacity)) - set(rows))
        assert np.all(host.data.episode_id[empty] == -1)


def test_insert_chunk_larger_than_remaining_space_splits_across_the_end():
    buf = replay.init_buffer(5, 1, STATE, ACTION, GOAL)
    buf = _insert(buf, _chunk(np.arange(3), np.zeros((3, 1), np.int64)))
    buf = _insert(buf, _chunk(np.arange(3, 6), np.zeros((3, 1), np.int64)))
    buf = _insert(buf, _chunk(np.arange(6, 9), np.zeros((3, 1), np.int64)))
    # rows 3, 4, 0 received t = 3, 4, 5 and rows 1, 2, 3 then t = 6, 7, 8
    np.testing.assert_array_equal(np.asarray(buf.data.obs[:, 0, 0]), [5, 6, 7, 8, 4])
    assert int(buf.insert_pos) == 4 and int(buf.count) == 5


# ------------------------------------------------------------------------------------ relabelling


def _build_ring(capacity: int, schedules: list[list[int]], chunk_sizes: list[int]) -> tuple[replay.ReplayBuffer, int]:
    """Insert sum(chunk_sizes) steps for len(schedules) envs; env e's episodes have lengths schedules[e]."""
    num_envs = len(schedules)
    total = sum(chunk_sizes)
    ids = np.stack([_episode_ids(s, total) for s in schedules], 1)
    buf = replay.init_buffer(capacity, num_envs, STATE, ACTION, GOAL)
    start = 0
    for size in chunk_sizes:
        buf = _insert(buf, _chunk(np.arange(start, start + size), ids[start : start + size]))
        start += size
    return buf, total


def _check_batch(batch: replay.Batch, buf: replay.ReplayBuffer, total: int) -> dict:
    """Assert every relabelling invariant on a batch; return per-sample facts for further checks."""
    obs, goal = np.asarray(batch.obs), np.asarray(batch.goal)
    offset, action = np.asarray(batch.offset), np.asarray(batch.action)
    t, env, ep = obs[:, 0].astype(int), obs[:, 1].astype(int), obs[:, 2].astype(int)
    count = int(buf.count)
    # Sampled rows are real rows of the newest `count` steps (never empty, never overwritten ones).
    assert np.all(ep >= 0)
    assert np.all((t >= total - count) & (t < total))
    np.testing.assert_array_equal(action[:, 0], t * 100 + env)
    # The goal comes from the same episode, strictly later: the state at t + offset.
    goal_t, goal_ep = goal[:, 0].astype(int), goal[:, 1].astype(int)
    np.testing.assert_array_equal(goal_ep, ep)
    assert np.all(offset >= 1)
    np.testing.assert_array_equal(goal_t, t + offset)
    # ... and from a row still in the buffer, not past the episode's last buffered step.
    ids = np.asarray(buf.data.episode_id)
    oldest = (int(buf.insert_pos) - count) % buf.capacity
    chron_ids = ids[[(oldest + c) % buf.capacity for c in range(count)]]  # [count, num_envs]
    first_t = total - count
    # last_c[c, e]: chronological index of the last buffered step of the episode held at (c, e)
    last_c = np.zeros_like(chron_ids)
    for c in range(count - 1, -1, -1):
        later_same = c + 1 < count and chron_ids[min(c + 1, count - 1)] == chron_ids[c]
        last_c[c] = np.where(later_same, last_c[min(c + 1, count - 1)], c)
    last_t = first_t + last_c[t - first_t, env]
    n = last_t - t + 1
    assert np.all(offset <= n)
    # A sampled step that is the last buffered step of its episode uses its own next state.
    assert np.all(offset[n == 1] == 1)
    return {"t": t, "env": env, "ep": ep, "n": n, "offset": offset}


def test_relabelled_goals_stay_in_their_episode_across_wraparound():
    capacity = 16
    # 4 envs x 29 steps: the oldest 13 steps are overwritten, some episodes are cut at the old end,
    # some straddle the physical end of the ring, episodes of length 1 sit next to long ones.
    schedules = [[5, 3, 7, 1, 9, 2, 30], [1, 1, 1, 20, 1, 1, 2, 30], [29], [14, 4, 4, 1, 5, 30]]
    buf, total = _build_ring(capacity, schedules, [6, 5, 9, 3, 6])
    assert int(buf.count) == capacity and int(buf.insert_pos) == total % capacity
    facts = [_check_batch(_sample(buf, jax.random.PRNGKey(i), 512, 0.9), buf, total) for i in range(6)]
    n = np.concatenate([f["n"] for f in facts])
    t = np.concatenate([f["t"] for f in facts])
    env = np.concatenate([f["env"] for f in facts])
    # Every (env, buffered step) pair is sampled, and end-of-episode steps do occur.
    assert len(set(zip(env.tolist(), t.tolist()))) == 4 * capacity
    assert np.any(n == 1) and np.any(n > 5)


def test_relabelling_on_partially_filled_buffer_ignores_empty_rows():
    capacity = 32
    buf, total = _build_ring(capacity, [[3, 4, 40], [10, 40]], [5, 6])
    assert int(buf.count) == 11
    f = _check_batch(_sample(buf, jax.random.PRNGKey(3), 1024, 0.99), buf, total)
    assert f["t"].max() == total - 1 and f["t"].min() == 0
    # The open episode at the end: its last buffered step is the newest row.
    open_env1 = f["env"] == 1
    np.testing.assert_array_equal(f["n"][open_env1 & (f["ep"] == 1)], total - f["t"][open_env1 & (f["ep"] == 1)])


@settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lengths=st.lists(st.lists(st.integers(1, 12), min_size=1, max_size=40), min_size=3, max_size=3),
    total=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
)
def test_relabelling_property_random_episode_layouts(lengths, total, seed):
    capacity, num_envs = 16, 3
    lengths = [ls + [total] for ls in lengths]  # enough steps for every env
    ids = np.stack([_episode_ids(ls, total) for ls in lengths], 1)
    # Build the ring directly (insert is tested above) so that shapes, and the compiled sampler, stay fixed.
    count = min(total, capacity)
    keep = slice(total - count, total)
    chunk = _chunk(np.arange(total)[keep], ids[keep])
    rows = np.arange(total - count, total) % capacity
    empty = jax.device_get(replay.init_buffer(capacity, num_envs, STATE, ACTION, GOAL).data)

    def put(store, new):
        store = np.array(store)
        store[rows] = np.asarray(new)
        return store

    data = jax.tree_util.tree_map(put, empty, chunk)
    buf = replay.ReplayBuffer(data=data, insert_pos=np.int32(total % capacity), count=np.int32(count))
    _check_batch(_sample(buf, jax.random.PRNGKey(seed), 256, 0.8), buf, total)


# ------------------------------------------------------------------------------------ offset law


def _truncated_geometric_pmf(gamma: float, n: int) -> np.ndarray:
    k = np.arange(1, n + 1)
    p = gamma ** (k - 1.0)
    return p / p.sum()


def _chisquare_pvalue(observed: np.ndarray, expected_p: np.ndarray, min_expected: float = 10.0) -> float:
    """Chi-square goodness of fit, pooling the tail bins whose expected count is small."""
    total = observed.sum()
    exp = expected_p * total
    obs_bins, exp_bins = [], []
    acc_o = acc_e = 0.0
    for o, e in zip(observed, exp):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= min_expected:
            obs_bins.append(acc_o)
            exp_bins.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e > 0:
        obs_bins[-1] += acc_o
        exp_bins[-1] += acc_e
    obs_bins, exp_bins = np.array(obs_bins), np.array(exp_bins)
    exp_bins *= obs_bins.sum() / exp_bins.sum()
    return stats.chisquare(obs_bins, exp_bins).pvalue


@pytest.mark.parametrize("gamma,n", [(0.9, 60), (0.99, 500), (0.7, 4), (0.5, 2), (0.999, 3)])
def test_truncated_geometric_matches_pmf(gamma, n):
    draws = np.asarray(_truncated_geometric(jax.random.PRNGKey(7), gamma, np.full((100_000,), n, np.int32)))
    assert draws.min() >= 1 and draws.max() <= n
    observed = np.bincount(draws, minlength=n + 1)[1:]
    assert _chisquare_pvalue(observed, _truncated_geometric_pmf(gamma, n)) > 1e-3


def test_truncated_geometric_edge_cases():
    key = jax.random.PRNGKey(0)
    ones = _truncated_geometric(key, 0.99, np.ones((1000,), np.int32))
    assert np.all(np.asarray(ones) == 1)
    # Vectorised over n: each draw respects its own bound.
    n = np.arange(1, 2001, dtype=np.int32)
    k = np.asarray(_truncated_geometric(key, 0.95, n))
    assert np.all((k >= 1) & (k <= np.asarray(n)))
    # A very long trajectory: the plain geometric law, mean 1 / (1 - gamma), no pile-up at n.
    big = np.asarray(_truncated_geometric(key, 0.99, np.full((200_000,), 1_000_000, np.int32)))
    assert abs(big.mean() - 100.0) < 1.5
    assert big.max() < 10_000


def test_sampled_offsets_follow_truncated_geometric_on_one_long_episode():
    capacity, gamma = 400, 0.98
    buf, total = _build_ring(capacity, [[10_000]], [250, 250])  # wrapped, one episode
    batch = _sample(buf, jax.random.PRNGKey(11), 50_000, gamma)
    f = _check_batch(batch, buf, total)
    # The sampled step c (0 = oldest) is uniform and has n = capacity - c future states:
    # P(k) = (1 / capacity) * sum_c pmf_{n_c}(k).
    mixture = np.zeros(capacity)
    for n in range(1, capacity + 1):
        mixture[:n] += _truncated_geometric_pmf(gamma, n)
    mixture /= capacity
    observed = np.bincount(f["offset"], minlength=capacity + 1)[1:]
    assert _chisquare_pvalue(observed, mixture) > 1e-3
    # Conditional on far-from-the-end samples the law is (nearly) the untruncated geometric.
    far = f["offset"][f["n"] >= 300]
    assert abs(far.mean() - 1 / (1 - gamma)) < 1.5


def test_sampled_offsets_truncate_at_short_episode_ends():
    # Episodes of length 5: the offset law depends on the position in the episode.
    gamma = 0.6
    buf, total = _build_ring(100, [[5] * 20, [5] * 20], [100])
    batch = _sample(buf, jax.random.PRNGKey(5), 40_000, gamma)
    f = _check_batch(batch, buf, total)
    np.testing.assert_array_equal(f["n"], 5 - f["t"] % 5)
    for n in range(1, 6):
        sel = f["offset"][f["n"] == n]
        assert len(sel) > 5000
        observed = np.bincount(sel, minlength=n + 1)[1:]
        assert len(observed) == n  # never beyond the episode's end
        if n > 1:
            assert _chisquare_pvalue(observed, _truncated_geometric_pmf(gamma, n)) > 1e-3


# ------------------------------------------------------------------------------------ memory


def _all_avals(jaxpr):
    for eqn in jaxpr.eqns:
        for v in list(eqn.invars) + list(eqn.outvars):
            if hasattr(v, "aval"):
                yield v.aval
        for param in eqn.params.values():
            subs = param if isinstance(param, (list, tuple)) else [param]
            for sub in subs:
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    yield from _all_avals(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    yield from _all_avals(sub)


def test_sample_memory_is_linear_in_batch_not_quadratic_in_capacity():
    capacity, num_envs, batch_size = 10_000, 2, 256
    buf = replay.init_buffer(capacity, num_envs, STATE, ACTION, GOAL)
    closed = jax.make_jaxpr(lambda b, k: replay.sample(b, k, batch_size, 0.99))(buf, jax.random.PRNGKey(0))
    avals = list(_all_avals(closed.jaxpr))
    assert avals, "jaxpr scan found nothing"
    biggest = max(math.prod(getattr(a, "shape", ())) for a in avals)
    # Nothing larger than the stored data itself (capacity x num_envs x state); no T x T or T x B matrix.
    assert biggest <= capacity * num_envs * STATE
    for a in avals:
        shape = tuple(getattr(a, "shape", ()))
        assert sum(d >= capacity for d in shape) <= 1, f"quadratic intermediate {shape}"
    # The compiled program's scratch memory is tiny too (a T x T float32 matrix would be 400 MB).
    compiled = jax.jit(lambda b, k: replay.sample(b, k, batch_size, 0.99)).lower(buf, jax.random.PRNGKey(0)).compile()
    analysis = compiled.memory_analysis()
    if analysis is not None and getattr(analysis, "temp_size_in_bytes", None) is not None:
        assert analysis.temp_size_in_bytes < 10 * 2**20
