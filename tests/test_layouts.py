"""Maze layouts: the built-ins and the ASCII parser."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepcrl.envs.layouts import LAYOUT_NAMES, Layout, get_layout, parse_layout
from deepcrl.errors import ConfigError

EXPECTED_NAMES = ("open", "u_maze", "u4_maze", "u5_maze", "big_maze", "hardest_maze", "serpentine", "branches", "long_u")


def test_builtin_names():
    assert set(LAYOUT_NAMES) == set(EXPECTED_NAMES)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_builtin_layout_is_consistent(name):
    lay = get_layout(name)
    assert isinstance(lay, Layout) and lay.name == name
    assert all(len(row) == lay.width for row in lay.walls) and len(lay.walls) == lay.height
    free = set(lay.free_cells)
    assert len(lay.start_cells) >= 1 and set(lay.start_cells) <= free
    assert len(lay.goal_cells) >= 1 and set(lay.goal_cells) <= free
    assert len(lay.eval_goal_cells) >= 1 and set(lay.eval_goal_cells) <= set(lay.goal_cells)
    dist = lay.geodesic_distances(lay.start_cells)
    assert all(dist[c] > 0 for c in lay.goal_cells)
    assert all(dist[c] >= 0 for c in lay.eval_goal_cells)
    # The paper's mazes are closed by a wall border.
    w = lay.wall_array
    assert w[0].all() and w[-1].all() and w[:, 0].all() and w[:, -1].all()
    # Round trip through the ASCII form.
    again = parse_layout(lay.to_ascii(), name)
    assert again == lay


def test_builtin_cells_match_reference():
    # Spot checks against the reference code's grids (scaling-crl envs/ant_maze.py).
    u = get_layout("u_maze")
    assert u.to_ascii() == "#####\n#rgg#\n###g#\n#GGG#\n#####\n"
    assert u.start_cells == ((1, 1),) and u.eval_goal_cells == ((3, 1), (3, 2), (3, 3))
    assert get_layout("u4_maze").start_cells == ((2, 1),)
    assert get_layout("u4_maze").eval_goal_cells == ((4, 1), (5, 1), (5, 2), (5, 3))
    u5 = get_layout("u5_maze")
    assert (u5.height, u5.width) == (7, 8) and len(u5.goal_cells) == 16 and len(u5.eval_goal_cells) == 8
    big = get_layout("big_maze")
    assert (big.height, big.width) == (8, 8) and len(big.goal_cells) == 25
    assert big.eval_goal_cells == ((1, 5), (1, 6), (2, 6), (5, 3), (5, 6), (6, 2), (6, 3), (6, 5), (6, 6))
    hard = get_layout("hardest_maze")
    assert (hard.height, hard.width) == (9, 12) and len(hard.goal_cells) == 45
    d = hard.geodesic_distances(hard.start_cells)
    far = max(d[c] for c in hard.goal_cells)
    assert set(hard.eval_goal_cells) == {c for c in hard.goal_cells if d[c] == far}
    op = get_layout("open")
    assert len(op.free_cells) == 25 and op.eval_goal_cells == ((5, 5),)


def test_geodesic_distances_u_maze():
    d = get_layout("u_maze").geodesic_distances([(1, 1)])
    assert d[1, 1] == 0 and d[1, 3] == 2 and d[3, 3] == 4 and d[3, 1] == 6
    assert d[0, 0] == -1 and d[2, 1] == -1


def test_parse_whitespace_defaults_and_no_border():
    text = "\n\n   r..g  \n\t.#.g\n   ..#g   \n\n"
    lay = parse_layout(text, "mine")
    assert (lay.height, lay.width) == (3, 4)
    assert lay.start_cells == ((0, 0),)
    assert lay.goal_cells == ((0, 3), (1, 3), (2, 3))
    # No 'G': evaluation goals are the goal cells farthest from the start.
    assert lay.eval_goal_cells == ((2, 3),)
    assert lay.walls[1][1] and not lay.walls[0][1]


def test_parse_explicit_eval_goals():
    lay = parse_layout("rgG\n.Gg", "m")
    assert lay.goal_cells == ((0, 1), (0, 2), (1, 1), (1, 2))
    assert lay.eval_goal_cells == ((0, 2), (1, 1))


def _one_line_error(text: str, *needles: str):
    with pytest.raises(ConfigError) as info:
        parse_layout(text, "bad")
    msg = str(info.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


def test_parse_errors():
    _one_line_error("r.g\n..\n...", "row 1", "2", "3")
    _one_line_error("r.g\n.x.", "'x'", "row 1", "col 1", "'#'")
    _one_line_error("r\tg", "'\\t'")
    _one_line_error("..g\n...", "no start")
    _one_line_error("r..\n...", "no goal")
    _one_line_error("r#g", "goal cell (row 0, col 2)", "not reachable")
    _one_line_error("r#r\ng#.", "start cell (row 0, col 2)", "not reachable")
    _one_line_error("   \n\n", "empty")


def test_get_layout_errors(tmp_path):
    with pytest.raises(ConfigError) as info:
        get_layout("nope_maze")
    msg = str(info.value)
    assert "'nope_maze'" in msg and "u_maze" in msg and "maze:PATH" in msg and "\n" not in msg
    missing = tmp_path / "missing.txt"
    with pytest.raises(ConfigError, match="missing.txt"):
        get_layout(f"maze:{missing}")
    with pytest.raises(ConfigError, match="directory"):
        get_layout(f"maze:{tmp_path}")
    with pytest.raises(ConfigError):
        get_layout("maze:")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00r")
    with pytest.raises(ConfigError, match="bin.txt"):
        get_layout(f"maze:{binary}")
    bad = tmp_path / "bad.txt"
    bad.write_text("r.g\n.q.\n")
    with pytest.raises(ConfigError) as info:
        get_layout(f"maze:{bad}")
    assert "bad.txt" in str(info.value) and "'q'" in str(info.value)


def test_get_layout_file(tmp_path):
    f = tmp_path / "my.txt"
    f.write_text("\n  #####\n  #r.G#\n  #####\n")
    lay = get_layout(f"maze:{f}")
    assert lay.name == "maze" and lay.start_cells == ((1, 1),) and lay.eval_goal_cells == ((1, 3),)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="#.rgG \t\nx", max_size=60))
def test_parser_loads_or_raises_config_error(text):
    try:
        lay = parse_layout(text, "fuzz")
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert lay.start_cells and lay.goal_cells and lay.eval_goal_cells
    assert set(lay.eval_goal_cells) <= set(lay.goal_cells) <= set(lay.free_cells)
    d = lay.geodesic_distances(lay.start_cells)
    assert all(d[c] >= 0 for c in lay.goal_cells)
    assert parse_layout(lay.to_ascii(), "fuzz") == lay


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="#.rg", min_size=4, max_size=4), min_size=1, max_size=5))
def test_parser_on_rectangular_grids(rows):
    text = "\n".join(rows)
    try:
        lay = parse_layout(text, "fuzz")
    except ConfigError as e:
        msg = str(e)
        assert "\n" not in msg
        assert "no start" in msg or "no goal" in msg or "not reachable" in msg
        return
    assert (lay.height, lay.width) == (len(rows), 4)
    assert np.array_equal(lay.wall_array, np.array([[ch == "#" for ch in r] for r in rows]))


def test_the_testbed_variants_parse_and_are_long_horizon():
    """experiments/mazes/: the testbeds' variants (experiments/variants.yaml), each a long path to its goal."""
    from pathlib import Path

    files = sorted((Path(__file__).resolve().parent.parent / "experiments" / "mazes").glob("*.txt"))
    assert len(files) >= 8
    for f in files:
        lay = get_layout(f"maze:{f}")
        dist = lay.geodesic_distances(lay.start_cells)
        assert len(lay.start_cells) == 1 and len(lay.eval_goal_cells) == 1, f.name
        assert 20 <= int(dist[lay.eval_goal_cells[0]]) <= 34, f.name
    branches = get_layout("branches")
    assert int(branches.geodesic_distances(branches.start_cells)[branches.eval_goal_cells[0]]) == 30
