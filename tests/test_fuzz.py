"""Fuzzing the user-facing loaders: whatever a user feeds them, they either load or raise ConfigError with
one line; never another exception.

- config mappings (Config.from_dict, config_from_mapping) followed by validate;
- config files (load_config_file): JSON and YAML texts, random bytes;
- the ASCII maze parser on unicode text and large grids, and maze files of random bytes.

tests/test_layouts.py already fuzzes parse_layout over "#.rgG \\t\\nx"; the maze tests here add arbitrary
unicode (including the characters str.splitlines and str.strip treat as line breaks and spaces), large
grids and files of random bytes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import typing

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepcrl.build import validate
from deepcrl.config import Config
from deepcrl.config_files import config_from_mapping, load_config_file
from deepcrl.envs.layouts import get_layout, parse_layout
from deepcrl.errors import ConfigError
from deepcrl.build import build_task_and_agent as build_agent
from deepcrl.run_dir import prepare_run_dir

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FIELDS = [f.name for f in dataclasses.fields(Config)]
DEFAULTS = Config().to_dict()


def _loads_or_config_error(fn, *args):
    """fn(*args), or None if it raised ConfigError with a one-line message; any other exception fails."""
    try:
        return fn(*args)
    except ConfigError as e:
        msg = str(e)
        assert msg and "\n" not in msg and "\r" not in msg, repr(msg)
        return None


# ------------------------------------------------------------------------------- values and keys

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=300),
    st.integers(),  # huge ones too
    st.sampled_from([0, 1, 4, 8, 16, 64, 256, 2**31 - 1, 2**31, 2**63, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 0.5, 0.99, 1.0, 3e-4, -1.0, float("nan"), float("inf")]),
    st.text(max_size=12),
    st.sampled_from(
        [
            "point_open",
            "point",
            "point_u_maze",
            "u_maze",
            "maze:",
            "maze:/nonexistent",
            "swish",
            "relu",
            "l2",
            "dot",
            "cosine",
            "fwd_infonce",
            "binary_nce",
            "free",
            "start_cells",
            "goal_cells",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)),
    max_leaves=6,
)
keys = st.one_of(st.sampled_from(FIELDS), st.sampled_from([name.replace("_", "-") for name in FIELDS if "_" in name]), st.text(max_size=10))


@st.composite
def config_dicts(draw):
    """Mostly-valid mappings: a few fields set to random values (default-valued fields kept often),
    sometimes junk keys, so that validate gets past its first checks and reaches the deeper ones."""
    out = {}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        out[name] = draw(st.one_of(values, st.just(DEFAULTS[name])))
    if draw(st.integers(0, 3)) == 0:
        out.update(draw(st.dictionaries(keys, values, max_size=3)))
    return out


HINTS = typing.get_type_hints(Config)


def _has_declared_type(value, hint) -> bool:
    allowed = typing.get_args(hint) or (hint,)
    if value is None:
        return type(None) in allowed
    if isinstance(value, bool):
        return bool in allowed
    if float in allowed and isinstance(value, int):  # ints are numbers too
        return True
    return isinstance(value, tuple(t for t in allowed if t is not type(None) and t is not bool))


def _validated_config_is_usable(config: Config) -> None:
    """What validate passes, a run can use: declared types, a JSON round trip, and the run-time setup
    that follows validate in `train` (run dir check, networks) raises nothing but ConfigError."""
    for name, hint in HINTS.items():
        assert _has_declared_type(getattr(config, name), hint), (name, getattr(config, name))
    assert Config.from_dict(json.loads(config.to_json())) == config
    _loads_or_config_error(prepare_run_dir, config)  # stats the file system, creates nothing
    build_agent(config)


def _build_and_validate(data):
    config = Config.from_dict(data)
    validate(config)
    return config


def _map_and_validate(data):
    config = config_from_mapping(data, source="fuzz.yaml")
    validate(config)
    return config


@pytest.fixture(scope="module")
def in_empty_dir(tmp_path_factory):
    """Run in an empty folder, so that relative run dirs resolve there (nothing is written)."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("fuzz-cwd"))
    yield
    os.chdir(old)


@FAST
@given(config_dicts())
def test_from_dict_then_validate_loads_or_raises_config_error(in_empty_dir, data):
    config = _loads_or_config_error(_build_and_validate, data)
    if config is not None:
        _validated_config_is_usable(config)


@FAST
@given(st.one_of(config_dicts(), st.dictionaries(st.one_of(keys, st.integers(), st.none(), st.booleans()), values, max_size=4), values))
def test_config_from_mapping_then_validate_loads_or_raises_config_error(in_empty_dir, data):
    config = _loads_or_config_error(_map_and_validate, data)
    if config is not None:
        _validated_config_is_usable(config)


# ------------------------------------------------------------------------------- config files


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-files")


def _load_file(folder, name: str, content: bytes):
    path = folder / name
    path.write_bytes(content)

    def load():
        config = load_config_file(path)
        validate(config)
        return config

    return _loads_or_config_error(load)


@FAST
@given(st.one_of(config_dicts(), values))
def test_json_files_load_or_raise_config_error(folder, data):
    text = json.dumps(data, allow_nan=True)  # NaN and Infinity, as Python's json writes and reads them
    _load_file(folder, "fuzz.json", text.encode())


def _yaml_dump(data) -> str:
    try:
        return yaml.safe_dump(data)
    except (OverflowError, ValueError):  # e.g. ints beyond what the emitter handles
        return "depth: 8\n"


YAML_ALPHABET = "abcdepthwi_- :,.#&*!|>'\"%@`[]{}?0123456789e+\n\t"


@FAST
@given(
    st.one_of(
        st.builds(_yaml_dump, st.one_of(config_dicts(), values)),
        st.text(alphabet=YAML_ALPHABET, max_size=60),
        st.text(max_size=40),  # arbitrary unicode
        st.lists(st.tuples(keys, st.text(alphabet=YAML_ALPHABET, max_size=10)), max_size=4).map(
            lambda kv: "".join(f"{k}: {v}\n" for k, v in kv)
        ),
    )
)
def test_yaml_texts_load_or_raise_config_error(folder, text):
    _load_file(folder, "fuzz.yaml", text.encode("utf-8", "surrogatepass"))


@FAST
@given(st.binary(max_size=80), st.sampled_from(["fuzz.yaml", "fuzz.yml", "fuzz.json"]))
def test_config_files_of_random_bytes_load_or_raise_config_error(folder, content, name):
    _load_file(folder, name, content)


def test_yaml_bombs_and_deep_nesting_raise_config_error(folder):
    # Aliases are shared, not copied, so a "billion laughs" file loads fast and is then rejected by type.
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi")
    )
    assert _load_file(folder, "bomb.yaml", bomb.encode()) is None
    assert _load_file(folder, "deep.json", ("[" * 100_000 + "]" * 100_000).encode()) is None
    assert _load_file(folder, "deep.yaml", ("[" * 5_000 + "]" * 5_000).encode()) is None


# ------------------------------------------------------------------------------- mazes

MAZE_CHARS = "#.rgG \n\t"
# Characters str.splitlines() breaks lines at, or str.strip() removes, beyond "\n", "\r", " " and "\t".
ODD_BREAKS_AND_SPACES = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\u00a0\u3000\ufeff\x00"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.one_of(st.sampled_from(MAZE_CHARS), st.sampled_from(ODD_BREAKS_AND_SPACES), st.characters()), max_size=80))
def test_maze_parser_on_unicode_loads_or_raises_config_error(text):
    layout = _loads_or_config_error(parse_layout, text, "fuzz")
    if layout is not None:
        assert layout.start_cells and layout.goal_cells and layout.eval_goal_cells
        assert set(layout.eval_goal_cells) <= set(layout.goal_cells) <= set(layout.free_cells)
        assert parse_layout(layout.to_ascii(), "fuzz") == layout


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=120))
def test_maze_files_of_random_bytes_load_or_raise_config_error(folder, content):
    path = folder / "maze.txt"
    path.write_bytes(content)
    _loads_or_config_error(get_layout, f"maze:{path}")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="#.rgG", min_size=1, max_size=8), min_size=1, max_size=8))
def test_maze_files_of_maze_characters_load_or_raise_config_error(tmp_path_factory, rows):
    path = tmp_path_factory.getbasetemp() / "maze-rows.txt"
    path.write_text("\n".join(rows), encoding="utf-8")
    _loads_or_config_error(get_layout, f"maze:{path}")


def test_large_mazes_parse_quickly():
    n = 300
    open_maze = "\n".join(["r" + "." * (n - 1)] + ["." * n] * (n - 2) + ["." * (n - 1) + "g"])
    start = time.perf_counter()
    layout = parse_layout(open_maze, "big")
    assert (layout.height, layout.width) == (n, n) and layout.eval_goal_cells == ((n - 1, n - 1),)
    # A long line of junk and a file with very many rows fail with a one-line message, fast.
    assert _loads_or_config_error(parse_layout, "r" + "\u00e9" * 1_000_000, "junk") is None
    assert _loads_or_config_error(parse_layout, "r.g\n" * 100_000 + "r.", "rows") is None
    assert time.perf_counter() - start < 10
