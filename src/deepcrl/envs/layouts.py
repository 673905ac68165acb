"""Maze layouts: the built-in grids of the paper's mazes and a parser for user-written ASCII mazes.

A layout is a grid of cells, row-major, row 0 at the top of the text. Each cell is a wall or free;
some free cells are start cells, some are training goal cells, and a subset of the goal cells are the
far goals used for evaluation.

ASCII format (for `maze:PATH` files and for the built-ins below):

    #   wall
    .   free cell
    r   start cell
    g   goal cell
    G   goal cell that is also an evaluation goal

Lines may be surrounded by whitespace; blank leading and trailing lines are ignored. All rows must
have the same length. Cells outside the grid count as walls, so no border is needed. When no `G` is
given, the evaluation goals are the goal cells at the largest geodesic (BFS, 4-connected) distance
from the start cells. Every goal cell must be reachable from every start cell.

Every problem with a user's layout raises `ConfigError` with a single line naming the bad value and
what is allowed.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from deepcrl.errors import ConfigError, read_user_text

Cell = tuple[int, int]

WALL, FREE, START, GOAL, EVAL_GOAL = "#", ".", "r", "g", "G"
_ALLOWED = (WALL, FREE, START, GOAL, EVAL_GOAL)
_ALLOWED_TEXT = "'#' wall, '.' free, 'r' start, 'g' goal, 'G' evaluation goal"


@dataclasses.dataclass(frozen=True)
class Layout:
    """A maze grid. Cells are (row, col); `walls[row][col]` is True for a wall."""

    name: str
    walls: tuple[tuple[bool, ...], ...]
    start_cells: tuple[Cell, ...]
    goal_cells: tuple[Cell, ...]  # training goal cells
    eval_goal_cells: tuple[Cell, ...]  # far goal cells used for evaluation

    @property
    def height(self) -> int:
        return len(self.walls)

    @property
    def width(self) -> int:
        return len(self.walls[0]) if self.walls else 0

    @property
    def wall_array(self) -> np.ndarray:
        """The walls as a bool array [height, width]."""
        return np.array(self.walls, dtype=bool).reshape(self.height, self.width)

    @property
    def free_cells(self) -> tuple[Cell, ...]:
        """All non-wall cells, row-major."""
        return tuple((r, c) for r in range(self.height) for c in range(self.width) if not self.walls[r][c])

    @property
    def reachable_cells(self) -> tuple[Cell, ...]:
        """The free cells reachable from the start cells, row-major (what "free" sampling uses)."""
        dist = self.geodesic_distances(self.start_cells)
        return tuple((r, c) for r, c in self.free_cells if dist[r, c] >= 0)

    def pairs_within(self, low: int, high: int) -> tuple[np.ndarray, np.ndarray]:
        """(pairs [N, 4] as start row, start col, goal row, goal col; their path distances [N]): every
        ordered pair of reachable cells whose shortest-path distance lies in [low, high], row-major."""
        cells = self.reachable_cells
        pairs, dists = [], []
        for r, c in cells:
            dist = self.geodesic_distances([(r, c)])
            for gr, gc in cells:
                if low <= dist[gr, gc] <= high:
                    pairs.append((r, c, gr, gc))
                    dists.append(int(dist[gr, gc]))
        return np.array(pairs, np.int32).reshape(-1, 4), np.array(dists, np.int32)

    def geodesic_distances(self, from_cells) -> np.ndarray:
        """BFS distance in cell steps (4-connected) from the nearest of `from_cells` to every cell.

        Returns an int64 array [height, width]; walls and unreachable cells are -1.
        """
        walls = self.wall_array
        dist = np.full(walls.shape, -1, dtype=np.int64)
        queue: collections.deque[Cell] = collections.deque()
        for r, c in from_cells:
            r, c = int(r), int(c)
            if 0 <= r < self.height and 0 <= c < self.width and not walls[r, c] and dist[r, c] < 0:
                dist[r, c] = 0
                queue.append((r, c))
        while queue:
            r, c = queue.popleft()
            for nr, nc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if 0 <= nr < self.height and 0 <= nc < self.width:
                    if not walls[nr, nc] and dist[nr, nc] < 0:
                        dist[nr, nc] = dist[r, c] + 1
                        queue.append((nr, nc))
        return dist

    def to_ascii(self) -> str:
        """The layout in the ASCII format above (parses back to an equal layout, up to its name)."""
        starts, goals, evals = set(self.start_cells), set(self.goal_cells), set(self.eval_goal_cells)
        rows = []
        for r in range(self.height):
            row = []
            for c in range(self.width):
                if self.walls[r][c]:
                    row.append(WALL)
                elif (r, c) in starts:
                    row.append(START)
                elif (r, c) in evals:
                    row.append(EVAL_GOAL)
                elif (r, c) in goals:
                    row.append(GOAL)
                else:
                    row.append(FREE)
            rows.append("".join(row))
        return "\n".join(rows) + "\n"


def parse_layout(text: str, name: str, *, source: str | None = None) -> Layout:
    """Parse an ASCII maze (format in the module docstring) into a `Layout` called `name`.

    `source` is how error messages refer to the maze (default: `name`). Raises `ConfigError`.
    """
    where = repr(source if source is not None else name)
    if not isinstance(text, str):
        raise ConfigError(f"maze {where}: expected text, got {type(text).__name__}")
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ConfigError(f"maze {where} is empty: expected rows of {_ALLOWED_TEXT}")

    width = len(lines[0])
    for i, line in enumerate(lines):
        if len(line) != width:
            raise ConfigError(
                f"maze {where}: row {i} has {len(line)} cells, expected {width} like row 0 (all rows must have the same length)"
            )
        for j, ch in enumerate(line):
            if ch not in _ALLOWED:
                raise ConfigError(f"maze {where}: unknown character {ch!r} at row {i}, col {j}; allowed: {_ALLOWED_TEXT}")

    walls = tuple(tuple(ch == WALL for ch in line) for line in lines)
    cells = [(i, j, ch) for i, line in enumerate(lines) for j, ch in enumerate(line)]
    starts = tuple((i, j) for i, j, ch in cells if ch == START)
    goals = tuple((i, j) for i, j, ch in cells if ch in (GOAL, EVAL_GOAL))
    evals = tuple((i, j) for i, j, ch in cells if ch == EVAL_GOAL)
    if not starts:
        raise ConfigError(f"maze {where} has no start cell: mark at least one cell 'r'")
    if not goals:
        raise ConfigError(f"maze {where} has no goal cell: mark at least one cell 'g' or 'G'")

    layout = Layout(name=name, walls=walls, start_cells=starts, goal_cells=goals, eval_goal_cells=evals)
    # Every goal must be reachable from every start (all of them in one connected region).
    dist0 = layout.geodesic_distances(starts[:1])
    for cell in starts[1:] + goals:
        if dist0[cell] < 0:
            kind = "start" if cell in starts else "goal"
            raise ConfigError(
                f"maze {where}: {kind} cell (row {cell[0]}, col {cell[1]}) is not reachable from start "
                f"cell (row {starts[0][0]}, col {starts[0][1]}); all start and goal cells must be connected"
            )
    if not evals:
        dist = layout.geodesic_distances(starts)
        far = max(int(dist[g]) for g in goals)
        evals = tuple(g for g in goals if dist[g] == far)
        layout = dataclasses.replace(layout, eval_goal_cells=evals)
    return layout


# --------------------------------------------------------------------------------------------------
# Built-in layouts. The ant mazes are the cell layouts of the paper's reference code
# (github.com/wang-kevin3290/scaling-crl, envs/ant_maze.py; the same grids are in JaxGCRL's
# envs/ant_maze.py): 1 -> '#', R -> 'r', G -> 'g', and the cells marked G in the matching `*_EVAL`
# layout are written 'G' here. The reference places cell (i, j) at world (i, j) * 4 m; we only keep the
# grid (row i = y, column j = x, see PointMaze).

_BUILTIN_TEXT = {
    # An open arena of our own: a 5x5 free area inside a wall border, start in the top-left corner,
    # every other free cell a training goal, and the farthest cell (the opposite corner) the
    # evaluation goal.
    "open": """
        #######
        #rgggg#
        #ggggg#
        #ggggg#
        #ggggg#
        #ggggG#
        #######
    """,
    # U_MAZE, eval goals from U_MAZE_EVAL (the bottom corridor).
    "u_maze": """
        #####
        #rgg#
        ###g#
        #GGG#
        #####
    """,
    # U4_MAZE, eval goals from U4_MAZE_EVAL.
    "u4_maze": """
        #####
        #ggg#
        #r#g#
        ###g#
        #G#g#
        #GGG#
        #####
    """,
    # U5_MAZE, eval goals from U5_MAZE_EVAL.
    "u5_maze": """
        ########
        #gggggg#
        #r####g#
        ######g#
        #G####G#
        #GGGGGG#
        ########
    """,
    # BIG_MAZE, eval goals from BIG_MAZE_EVAL of envs/ant_maze.py (the humanoid maze file's
    # BIG_MAZE_EVAL differs by one cell, (2, 5); we follow the ant file).
    "big_maze": """
        ########
        #rg##GG#
        #gg#ggG#
        ##ggg###
        #gg#ggg#
        #g#Gg#G#
        #gGG#GG#
        ########
    """,
    # HARDEST_MAZE. The reference has no HARDEST_MAZE_EVAL, so the evaluation goals follow this
    # module's rule for mazes without 'G': the goal cells at the largest geodesic distance from the
    # start cell, (3, 10), (5, 4) and (7, 10), all 15 cell steps away.
    "hardest_maze": """
        ############
        #rggg#ggggg#
        #g##g#g#g#g#
        #gggggg#ggG#
        #g####g###g#
        #gg#G#ggggg#
        ##g#g#g#g###
        #gg#ggg#ggG#
        ############
    """,
    # Long corridors of our own (docs/long_horizons.md), not the paper's. A serpentine: the goal is 30
    # cells from the start along the corridor and 10 in a straight line.
    "serpentine": """
        ###########
        #r........#
        #########.#
        #.........#
        #.#########
        #.........#
        #########.#
        #........G#
        ###########
    """,
    # Branches of our own (docs/findings.md, the testbeds): the goal is 30 cells from the start along the
    # one shortest path and 10 in a straight line, behind the wall beside the first corridor; the path
    # passes a loop (top left), two dead ends (bottom left, and the 6-cell corridor below the goal)
    # and turns 11 times.
    "branches": """
        #############
        #r....#....G#
        #.###.#.###.#
        #.#...#...#.#
        #.#.#####.#.#
        #...#...#.#.#
        ###.#.#.#.#.#
        #.....#...#.#
        #############
    """,
    # A long U: the goal is 30 cells away along the corridor but only 2 in a straight line, behind the
    # wall the agent starts next to.
    "long_u": """
        #################
        #r..............#
        ###############.#
        #G..............#
        #################
    """,
}

LAYOUT_NAMES: tuple[str, ...] = tuple(_BUILTIN_TEXT)
BUILTIN_LAYOUTS: dict[str, Layout] = {n: parse_layout(t, n) for n, t in _BUILTIN_TEXT.items()}

MAZE_PREFIX = "maze:"


def get_layout(spec: str) -> Layout:
    """A built-in layout by name, or `maze:PATH` for an ASCII file (its layout is named "maze")."""
    if not isinstance(spec, str):
        raise ConfigError(f"maze layout {spec!r} is not a string: {_allowed_specs()}")
    if spec in BUILTIN_LAYOUTS:
        return BUILTIN_LAYOUTS[spec]
    if spec.startswith(MAZE_PREFIX):
        path = spec[len(MAZE_PREFIX) :]
        if not path:
            raise ConfigError(f"maze layout {spec!r} names no file: write maze:PATH, PATH an ASCII maze file")
        text = read_user_text(path, "maze file", hint=": maze:PATH needs a readable ASCII maze file")
        return parse_layout(text, "maze", source=spec)
    raise ConfigError(f"unknown maze layout {spec!r}: {_allowed_specs()}")


def _allowed_specs() -> str:
    return "allowed are " + ", ".join(LAYOUT_NAMES) + ", or maze:PATH for an ASCII maze file"
