"""The point-mass maze: resets, dynamics (walls are never crossed), auto-reset and make_env."""

from __future__ import annotations

import functools
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepcrl.envs import LAYOUT_NAMES, Env, EnvState, PointMaze, get_layout, make_env, parse_layout, step_autoreset
from deepcrl.errors import ConfigError

# A maze without a border: cells outside the grid count as walls.
BORDERLESS = parse_layout(
    """
    r..#..
    .#.#.g
    .#...#
    ...#.G
    """,
    "borderless",
)


# ------------------------------------------------------------------------------------------ helpers
def overlaps_wall(layout, cell_size, radius, pos) -> np.ndarray:
    """[N] bool: the square of half-size radius at pos [N, 2] overlaps a wall cell or leaves the grid.

    Independent of the environment's code: every wall cell is tested against every position, in float64.
    """
    pos = np.asarray(pos, np.float64).reshape(-1, 2)
    x, y = pos[:, :1], pos[:, 1:]
    w = np.argwhere(layout.wall_array)  # (row, col)
    cx, cy = w[:, 1][None, :] * cell_size, w[:, 0][None, :] * cell_size
    hit = (x + radius > cx) & (x - radius < cx + cell_size) & (y + radius > cy) & (y - radius < cy + cell_size)
    inside = (
        (x[:, 0] - radius >= 0)
        & (x[:, 0] + radius <= layout.width * cell_size)
        & (y[:, 0] - radius >= 0)
        & (y[:, 0] + radius <= layout.height * cell_size)
    )
    return hit.any(axis=1) | ~inside


def cells_of(points, cell_size) -> list[tuple[int, int]]:
    p = np.floor(np.asarray(points, np.float64) / cell_size).astype(int)
    return [(int(r), int(c)) for c, r in p.reshape(-1, 2)]


def place(env: PointMaze, state: EnvState, pos) -> EnvState:
    """`state` with the agent moved to `pos` (batched or not)."""
    pos = jnp.asarray(pos, jnp.float32)
    vel = jnp.zeros_like(pos)
    return state.replace(physics=state.physics.replace(pos=pos, vel=vel), obs=jnp.concatenate([pos, vel], -1))


def start_positions(env: PointMaze, n: int, rng: np.random.Generator) -> np.ndarray:
    """n valid positions in reachable free cells: half uniform, half pressed into a cell corner or edge."""
    cells = np.array(env.layout.reachable_cells)[rng.integers(0, len(env.layout.reachable_cells), n)]
    centre = (cells[:, ::-1] + 0.5) * env.cell_size
    h = (env.cell_size / 2 - env.radius) * (1 - 1e-5)
    uniform = rng.uniform(-h, h, (n, 2))
    corner = rng.choice([-h, 0.0, h], (n, 2))
    corner[:, 0] = np.where(np.all(corner == 0, axis=1), h, corner[:, 0])
    pos = (centre + np.where(rng.random((n, 1)) < 0.5, uniform, corner)).astype(np.float32)
    # float32 rounding may push an edge a hair into a wall: use the cell centre there.
    bad = overlaps_wall(env.layout, env.cell_size, env.radius, pos)
    return np.where(bad[:, None], centre, pos).astype(np.float32)


def random_actions(rng: np.random.Generator, steps: int, n: int) -> np.ndarray:
    """Saturated pushes held for a few steps (to press into corners), mixed with uniform and over-range actions."""
    held = rng.choice([-1.0, 0.0, 1.0], (steps // 6 + 1, n, 2)).repeat(6, axis=0)[:steps]
    uniform = rng.uniform(-1.0, 1.0, (steps, n, 2))
    big = rng.uniform(-3.0, 3.0, (steps, n, 2))  # clipped to [-1, 1] by the env
    mode = rng.integers(0, 3, (steps, n, 1))
    return np.where(mode == 0, held, np.where(mode == 1, uniform, big)).astype(np.float32)


@functools.lru_cache(maxsize=None)
def rollout_fn(env: PointMaze):
    """jit(keys [N], start positions [N, 2], actions [T, N, 2]) -> positions, velocities [T, N, 2]."""

    def one(key, pos0, actions):
        def body(s, a):
            s = env.step(s, a)
            return s, (s.physics.pos, s.physics.vel)

        return jax.lax.scan(body, place(env, env.reset(key), pos0), actions)[1]

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 1), out_axes=1))


# ------------------------------------------------------------------------------------ walls, sliding
_rng = np.random.default_rng(1234)


def _random_config():
    cs = float(_rng.uniform(0.5, 4.0))
    r = float(_rng.uniform(0.02, 0.48) * cs)
    return cs, r, float(_rng.uniform(0.05, 0.999) * (cs - 2 * r))


WALL_CASES = [
    ("u_maze", 1.0, 0.1, 0.25),
    ("u_maze", 1.0, 0.45, 0.0999),  # fat agent, top speed
    ("u_maze", *_random_config()),
    ("hardest_maze", 4.0, 0.5, 2.999),  # top speed: nearly a cell per step
    ("hardest_maze", 1.0, 0.05, 0.5),
    ("hardest_maze", *_random_config()),
    ("borderless", 1.0, 0.2, 0.5999),
]


@pytest.mark.parametrize("layout_name,cell_size,radius,max_speed", WALL_CASES)
def test_walls_are_never_crossed(layout_name, cell_size, radius, max_speed):
    layout = BORDERLESS if layout_name == "borderless" else get_layout(layout_name)
    env = PointMaze(layout, cell_size=cell_size, radius=radius, max_speed=max_speed, episode_length=10_000)
    rng = np.random.default_rng(zlib.crc32(repr((layout_name, cell_size, radius)).encode()))
    n, steps = 96, 150
    pos0 = start_positions(env, n, rng)
    assert not overlaps_wall(layout, cell_size, radius, pos0).any()
    actions = random_actions(rng, steps, n)
    pos, vel = map(np.asarray, rollout_fn(env)(jax.random.split(jax.random.PRNGKey(0), n), pos0, actions))
    bad = overlaps_wall(layout, cell_size, radius, pos.reshape(-1, 2))
    assert not bad.any(), f"{bad.sum()} positions overlap a wall, e.g. {pos.reshape(-1, 2)[bad][:3]}"
    # The velocity is the displacement achieved, never more than commanded, never backwards.
    prev = np.concatenate([pos0[None], pos[:-1]], axis=0)
    np.testing.assert_allclose(vel, pos - prev, atol=1e-5 * cell_size)
    cmd = max_speed * np.clip(actions, -1, 1)
    assert np.all(vel * np.sign(cmd) >= -1e-5 * cell_size)
    assert np.all(np.abs(vel) <= np.abs(cmd) + 1e-5 * cell_size)
    # The agent does move: many steps achieve the commanded displacement (fewer for a fat agent in
    # one-cell corridors).
    assert np.mean(np.all(np.abs(vel - cmd) < 1e-4 * cell_size, axis=-1)) > 0.25


_SLIDE_ENV = PointMaze(get_layout("u_maze"), radius=0.2, max_speed=0.5999, episode_length=10_000)
_SLIDE_STEP = jax.jit(lambda pos, a: _SLIDE_ENV.step(place(_SLIDE_ENV, _SLIDE_ENV.reset(jax.random.PRNGKey(0)), pos), a))


@settings(max_examples=150, deadline=None)
@given(
    cell=st.sampled_from(get_layout("u_maze").reachable_cells),
    off=st.tuples(*[st.one_of(st.sampled_from([-1.0, -0.99999, 0.0, 0.99999, 1.0]), st.floats(-1, 1))] * 2),
    action=st.tuples(*[st.one_of(st.sampled_from([-1.0, 1.0, 0.0]), st.floats(-2, 2))] * 2),
)
def test_single_step_property(cell, off, action):
    env, cs, r, eps = _SLIDE_ENV, _SLIDE_ENV.cell_size, _SLIDE_ENV.radius, 1e-4 * _SLIDE_ENV.cell_size
    # The env stops the agent ~eps short of a wall and treats edges within eps/2 of a face as touching.
    h = (cs / 2 - r) * (1 - 1e-5)
    pos = np.array([(cell[1] + 0.5) * cs + off[0] * h, (cell[0] + 0.5) * cs + off[1] * h], np.float32)
    assert not overlaps_wall(env.layout, cs, r, pos).any()
    out = _SLIDE_STEP(pos, np.asarray(action, np.float32))
    new = np.asarray(out.physics.pos, np.float64)
    assert not overlaps_wall(env.layout, cs, r, new).any()
    cmd = env.max_speed * np.clip(action, -1, 1)
    # Moving x first, then y: an axis that fell short stopped against a wall (a little further, the
    # square grown by eps overlaps it).
    if abs(new[0] - pos[0] - cmd[0]) > 1e-5:
        probe = np.array([new[0] + np.sign(cmd[0]) * 2 * eps, pos[1]])
        assert overlaps_wall(env.layout, cs, r + eps, probe).any(), (pos, action, new)
    if abs(new[1] - pos[1] - cmd[1]) > 1e-5:
        probe = np.array([new[0], new[1] + np.sign(cmd[1]) * 2 * eps])
        assert overlaps_wall(env.layout, cs, r + eps, probe).any(), (pos, action, new)


def test_slides_along_walls():
    env = PointMaze(get_layout("u_maze"), episode_length=100, max_speed=0.25)  # cell 1, radius 0.1, speed 0.25
    # From the centre of the start cell (1, 1): 11 steps diagonally up-right, then 1 down-right.
    actions = np.array([[1.0, -1.0]] * 11 + [[1.0, 1.0]], np.float32)[:, None]
    keys = jax.random.split(jax.random.PRNGKey(0), 1)
    pos, vel = map(np.asarray, rollout_fn(env)(keys, np.array([[1.5, 1.5]]), actions))
    pos, vel = pos[:, 0], vel[:, 0]
    # Row 0 above is a wall, so the agent slides right along it.
    x, y = pos[2]
    assert abs(x - 2.25) < 1e-5 and abs(y - 1.1) < 1e-3 and np.allclose(vel[2], [0.25, 0.0], atol=1e-6)
    assert np.allclose(vel[:3, 0], 0.25, atol=1e-6)  # x never slowed by the wall above
    # Keep going: stopped by the wall at x = 4 (right column), in the corner.
    x, y = pos[10]
    assert abs(x - 3.9) < 1e-3 and abs(y - 1.1) < 1e-3 and np.all(vel[10] == 0.0)
    # Diagonally down-right: the right wall stops x, the agent slides down the corridor.
    x, y = pos[11]
    assert abs(x - 3.9) < 1e-3 and abs(y - 1.35) < 1e-3 and vel[11, 0] == 0.0 and abs(vel[11, 1] - 0.25) < 1e-6


# ------------------------------------------------------------------------------------ resets, steps
def test_shapes_dtypes_and_protocol():
    env = make_env("point_u_maze")
    assert isinstance(env, Env)
    assert (env.state_size, env.goal_size, env.action_size, env.obs_size) == (4, 2, 2, 6)
    assert env.goal_indices == (0, 1) and env.name == "point_u_maze"
    keys = jax.random.split(jax.random.PRNGKey(3), 5)

    @jax.jit
    def run(keys):
        s, e = jax.vmap(env.reset)(keys), jax.vmap(env.eval_reset)(keys)
        return s, e, jax.vmap(env.step)(s, jnp.zeros((5, 2))), env.observation(s), env.achieved_goal(s.obs)

    s, e, s2, obs, achieved = run(keys)
    for st_ in (s, e):
        assert st_.obs.shape == (5, 4) and st_.obs.dtype == jnp.float32
        assert st_.goal.shape == (5, 2) and st_.goal.dtype == jnp.float32
        for f in (st_.distance, st_.success, st_.terminated, st_.truncated):
            assert f.shape == (5,) and f.dtype == jnp.float32
        assert st_.step.shape == (5,) and st_.step.dtype == jnp.int32 and np.all(np.asarray(st_.step) == 0)
        assert np.all(np.asarray(st_.terminated) == 0) and np.all(np.asarray(st_.truncated) == 0)
        assert np.all(np.asarray(st_.obs)[:, 2:] == 0)
        dist = np.linalg.norm(np.asarray(st_.obs)[:, :2] - np.asarray(st_.goal), axis=1)
        np.testing.assert_allclose(st_.distance, dist, rtol=1e-6)
        assert not np.array_equal(np.asarray(st_.key), np.asarray(keys))  # a fresh key
    assert obs.shape == (5, 6) and np.array_equal(obs[:, 4:], s.goal) and np.array_equal(achieved, s.obs[:, :2])
    assert s2.obs.shape == (5, 4) and s2.step.dtype == jnp.int32 and np.all(np.asarray(s2.step) == 1)
    assert jax.tree_util.tree_structure(s2) == jax.tree_util.tree_structure(s)


def test_success_at_goal_and_truncation():
    env = make_env("point_open", episode_length=5, goal_threshold=0.3)

    @jax.jit
    def run(key):
        s = env.reset(key)
        s = place(env, s, s.goal)  # put the agent at the goal, then stay 5 steps and leave for 3
        away = jnp.sign(jnp.array([3.5, 3.5]) - s.goal)  # towards the arena's centre
        actions = jnp.concatenate([jnp.zeros((5, 2)), jnp.broadcast_to(away, (3, 2))])
        return jax.lax.scan(lambda s, a: (env.step(s, a),) * 2, s, actions)[1]

    out = run(jax.random.PRNGKey(7))
    assert np.array_equal(out.truncated[:5], [0, 0, 0, 0, 1]) and np.all(out.terminated == 0)
    assert np.array_equal(out.step, np.arange(1, 9)) and np.array_equal(out.success[:5], np.ones(5))
    assert np.all(out.distance[:5] == 0.0)
    # Stepping away from the goal: success drops.
    assert out.success[-1] == 0.0 and out.distance[-1] >= 0.3


def test_eval_reset_goals_in_eval_cells():
    env = make_env("point_big_maze", cell_size=2.0, radius=0.3, max_speed=1.0, start_noise=0.1)
    lay, cs, r = env.layout, env.cell_size, env.radius
    s = jax.jit(jax.vmap(env.eval_reset))(jax.random.split(jax.random.PRNGKey(0), 400))
    goals, starts = np.asarray(s.goal), np.asarray(s.obs)[:, :2]
    assert set(cells_of(goals, cs)) == set(lay.eval_goal_cells)  # inside, and all of them used
    assert not overlaps_wall(lay, cs, r, goals).any()  # goals keep the agent's radius from cell edges
    assert set(cells_of(starts, cs)) <= set(lay.start_cells)
    centres = (np.array(cells_of(starts, cs))[:, ::-1] + 0.5) * cs
    assert np.all(np.abs(starts - centres) <= 0.1 * cs + 1e-5)
    assert np.abs(starts - centres).max() > 0.05 * cs  # there is noise


def test_training_resets():
    lay = get_layout("hardest_maze")
    keys = jax.random.split(jax.random.PRNGKey(1), 600)
    free = PointMaze(lay)  # defaults: starts and goals anywhere free
    s = jax.jit(jax.vmap(free.reset))(keys)
    starts, goals = np.asarray(s.obs)[:, :2], np.asarray(s.goal)
    assert not overlaps_wall(lay, 1.0, free.radius, starts).any()
    assert not overlaps_wall(lay, 1.0, free.radius, goals).any()
    assert len(set(cells_of(starts, 1.0))) > 0.8 * len(lay.free_cells)
    assert len(set(cells_of(goals, 1.0))) > 0.8 * len(lay.free_cells)
    cells = PointMaze(lay, train_starts="start_cells", train_goals="goal_cells", start_noise=0.5)
    s = jax.jit(jax.vmap(cells.reset))(keys)
    assert set(cells_of(s.obs[:, :2], 1.0)) == set(lay.start_cells)
    assert set(cells_of(s.goal, 1.0)) <= set(lay.goal_cells)
    assert not overlaps_wall(lay, 1.0, cells.radius, np.asarray(s.obs)[:, :2]).any()


def test_goals_differ_across_autoresets():
    env = make_env("point_u_maze", episode_length=4)
    n, steps = 6, 60

    def run(state, key):
        def body(s, k):
            a = jax.random.uniform(k, (n, 2), minval=-1, maxval=1)
            nxt, stepped = jax.vmap(lambda s_, a_: step_autoreset(env, s_, a_))(s, a)
            return nxt, (stepped.goal, stepped.truncated, nxt.goal, nxt.step)

        return jax.lax.scan(body, state, jax.random.split(key, steps))[1]

    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), n))
    goals, trunc, next_goals, next_step = map(np.asarray, jax.jit(run)(state, jax.random.PRNGKey(1)))
    assert trunc.shape == (steps, n) and np.array_equal(trunc[3::4], np.ones((steps // 4, n)))
    assert trunc.sum() == steps // 4 * n
    assert np.all(next_step[trunc == 1] == 0) and np.all(next_step[trunc == 0] > 0)
    episode_goals = goals[::4].reshape(-1, 2)  # one goal per episode
    assert len({tuple(g) for g in episode_goals}) == len(episode_goals)  # all distinct
    # The goal is constant within an episode and changes at every reset.
    assert np.array_equal(goals, np.repeat(goals[::4], 4, axis=0))
    assert np.all(np.any(next_goals[3::4] != goals[3::4], axis=-1))


# ------------------------------------------------------------------------------------ config errors
@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(cell_size=0.0), "cell_size"),
        (dict(cell_size=float("nan")), "cell_size"),
        (dict(cell_size="1"), "cell_size"),
        (dict(radius=0.5), "radius"),
        (dict(radius=0.0), "radius"),
        (dict(radius=0.4999999, max_speed=1e-8), "radius"),  # no room left for float32 positions
        (dict(max_speed=0.8), "max_speed"),
        (dict(max_speed=-0.1), "max_speed"),
        (dict(cell_size=2.0, radius=0.5, max_speed=1.0), "max_speed"),
        (dict(episode_length=0), "episode_length"),
        (dict(episode_length=2.5), "episode_length"),
        (dict(episode_length=True), "episode_length"),
        (dict(goal_threshold=0.0), "goal_threshold"),
        (dict(start_noise=-0.1), "start_noise"),
        (dict(train_starts="goal_cells"), "train_starts"),
        (dict(train_goals="start_cells"), "train_goals"),
    ],
)
def test_constructor_validation(kwargs, needle):
    with pytest.raises(ConfigError) as info:
        PointMaze(get_layout("u_maze"), **kwargs)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg


def test_make_env(tmp_path):
    assert make_env("point").name == "point_u_maze"
    for name in LAYOUT_NAMES:
        env = make_env(f"point_{name}")
        assert env.name == f"point_{name}" and env.layout == get_layout(name)
    env = make_env("point", layout="hardest_maze", episode_length=7, train_goals="goal_cells")
    assert env.name == "point_hardest_maze" and env.episode_length == 7 and env.train_goals == "goal_cells"
    f = tmp_path / "m.txt"
    f.write_text("r.#\n..G\n")
    env = make_env("point", layout=f"maze:{f}")
    assert env.name == "point_maze" and env.layout.eval_goal_cells == ((1, 2),)
    assert make_env("point_u_maze", layout="u_maze").name == "point_u_maze"
    for bad, needle in [
        (lambda: make_env("cheetah_u_maze"), "'cheetah_u_maze'"),
        (lambda: make_env("point_nowhere"), "point_u_maze"),
        (lambda: make_env("point", layout="nowhere"), "'nowhere'"),
        (lambda: make_env("point_u_maze", layout="big_maze"), "'big_maze'"),
        (lambda: make_env("point", speed=1.0), "'speed'"),
        (lambda: make_env("point", layout=f"maze:{tmp_path / 'nope.txt'}"), "nope.txt"),
    ]:
        with pytest.raises(ConfigError) as info:
            bad()
        assert needle in str(info.value) and "\n" not in str(info.value)


def test_chain_goals_gives_a_reached_goal_a_successor_without_resetting():
    """--chain-goals: the step that reaches the goal keeps the position, step count and episode, and
    aims at a fresh training goal (distance and success recomputed); without it the goal stays."""
    env = make_env("point_open", episode_length=50, goal_threshold=0.5)
    s = place(env, env.reset(jax.random.PRNGKey(3)), jnp.array([2.5, 2.5]))
    s = s.replace(goal=jnp.array([2.5, 2.6]))  # within the threshold after any small step
    zero = jnp.zeros(2)
    chained_next, stepped = jax.jit(lambda s: step_autoreset(env, s, zero, chain_goals=True))(s)
    plain_next, _ = jax.jit(lambda s: step_autoreset(env, s, zero))(s)
    assert float(stepped.success) == 1.0
    np.testing.assert_array_equal(plain_next.goal, s.goal)  # the paper's: the episode keeps its goal
    assert not np.allclose(chained_next.goal, s.goal)  # a new goal ...
    np.testing.assert_array_equal(chained_next.obs, stepped.obs)  # ... from where the agent is
    assert int(chained_next.step) == int(stepped.step) == 1  # the episode goes on
    expected = float(jnp.linalg.norm(chained_next.obs[:2] - chained_next.goal))
    assert float(chained_next.distance) == pytest.approx(expected, abs=1e-5)
    assert float(chained_next.success) == float(expected < 0.5)
    # A step that does not reach the goal keeps it, chained or not.
    far = s.replace(goal=jnp.array([5.5, 5.5]))
    kept, stepped = jax.jit(lambda s: step_autoreset(env, s, zero, chain_goals=True))(far)
    assert float(stepped.success) == 0.0
    np.testing.assert_array_equal(kept.goal, far.goal)


def test_chain_goals_strings_goals_together_over_an_episode():
    """A policy that walks straight to its goal reaches several goals per episode with chaining, one without."""
    env = make_env("point_open", episode_length=100, goal_threshold=0.5)
    n = 64

    def run(key, chain):
        def body(s, _):
            a = jnp.clip((s.goal - s.obs[:, :2]) / env.max_speed, -1, 1)  # straight at the goal (open arena)
            nxt, stepped = jax.vmap(lambda s_, a_: step_autoreset(env, s_, a_, chain))(s, a)
            return nxt, (stepped.success, stepped.goal)

        s = jax.vmap(env.reset)(jax.random.split(key, n))
        return jax.lax.scan(body, s, None, length=99)[1]

    for chain, expect in ((False, 1), (True, 3)):
        success, goals = map(np.asarray, jax.jit(lambda k: run(k, chain))(jax.random.PRNGKey(5)))
        distinct = np.mean([len({tuple(g) for g in goals[:, i]}) for i in range(n)])
        assert distinct >= expect if chain else distinct == expect, (chain, distinct)


def test_keep_first_goal_resets_the_start_but_keeps_the_goal():
    """--keep-first-goal (the reference code's defect, for comparison): an episode that ends starts again
    elsewhere towards the same goal (distance and success recomputed); by default the reset draws a new goal."""
    env = make_env("point_open", episode_length=3, goal_threshold=0.5)
    s = env.reset(jax.random.PRNGKey(7))
    zero = jnp.zeros(2)

    def episode(keep):
        state = s
        for _ in range(3):  # the third step truncates the episode and resets it
            state, stepped = jax.jit(lambda x: step_autoreset(env, x, zero, keep_first_goal=keep))(state)
        return state, stepped

    kept, stepped = episode(True)
    fresh, _ = episode(False)
    assert float(stepped.truncated) == 1.0 and int(kept.step) == int(fresh.step) == 0  # both were reset
    np.testing.assert_array_equal(kept.goal, s.goal)  # the goal of the first reset, still
    assert not np.allclose(fresh.goal, s.goal)  # the paper's intent: a fresh goal
    np.testing.assert_array_equal(kept.obs, fresh.obs)  # the same fresh start either way
    assert float(kept.distance) == pytest.approx(float(jnp.linalg.norm(kept.obs[:2] - kept.goal)), abs=1e-5)


def test_keep_first_goal_refuses_settings_that_draw_goals_themselves():
    from deepcrl.config import Config, check_fields

    for other, name in ((dict(chain_goals=True), "chain_goals=True"), (dict(train_max_goal_cells=3), "train_max_goal_cells=3")):
        with pytest.raises(ConfigError) as info:
            check_fields(Config(keep_first_goal=True, **other))
        assert "keep_first_goal=True" in str(info.value) and name in str(info.value) and "\n" not in str(info.value)
