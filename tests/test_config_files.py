"""`deepcrl train --config FILE` (YAML or JSON) and `deepcrl train --dry-run`: files load, flags override
them, every bad file gives exit 2 with one `deepcrl: error:` line and nothing written, and the dry run
prints the derived numbers (checked here against the formulas) without training or writing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from deepcrl import replay
from deepcrl.config import Config
from deepcrl.config_files import load_config_file
from deepcrl.errors import ConfigError
from cli_helpers import assert_one_error_line as _assert_one_error_line, dry_run_rows, run_main as _main


def _write(path: Path, text: str | bytes) -> str:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


# A small config, so that dry runs are quick; numbers chosen so that num_epochs rounds up.
SMALL = dict(
    env="point_open",
    depth=4,
    width=32,
    num_envs=16,
    unroll_length=25,
    updates_per_epoch=20,
    batch_size=128,
    buffer_size=200,
    prefill_steps=50,
    episode_length=50,
    total_env_steps=10_001,
)


# ------------------------------------------------------------------------------- loading files


def test_yaml_and_json_files_load(tmp_path):
    yml = _write(
        tmp_path / "run.yaml",
        "# a comment\nenv: point_open\ndepth: 16\nbatch-size: 128\nactor_lr: 1e-3\n"
        "max_speed: 1\nlayer_norm: false\nlayout: null\nrun_dir: out/x\n",
    )
    c = load_config_file(yml)
    assert (c.env, c.depth, c.batch_size, c.layer_norm, c.layout, c.run_dir) == ("point_open", 16, 128, False, None, "out/x")
    assert c.actor_lr == 1e-3 and isinstance(c.actor_lr, float)  # YAML 1.2 float, not the string "1e-3"
    assert c.max_speed == 1.0 and isinstance(c.max_speed, float)  # ints accepted for float fields
    assert c.width == Config().width  # unset keys keep the defaults
    js = _write(tmp_path / "run.json", json.dumps({"depth": 8, "gamma": 0.9, "activation": "relu", "seed": 7}))
    c = load_config_file(js)
    assert (c.depth, c.gamma, c.activation, c.seed) == (8, 0.9, "relu", 7)
    assert load_config_file(_write(tmp_path / "also.yml", "{depth: 4}")).depth == 4


def test_flags_override_file_values(workdir, tmp_path, capsys):
    path = _write(tmp_path / "run.yaml", "\n".join(f"{k}: {v}" for k, v in SMALL.items()) + "\nseed: 5\n")
    code, out, err = _main(
        ["train", "--config", path, "--dry-run", "--width", "16", "--updates-per-epoch", "10", "--run-dir", str(tmp_path / "run")], capsys
    )
    assert code == 0, err
    rows = dry_run_rows(out)
    # width 16 from the flag (the file says 32), depth 4 from the file (the default is 8).
    assert rows["params actor"].startswith(f"{_mlp(16, 4, 6, 4):,} (depth 4, width 16)")
    assert rows["sgd steps per epoch"] == "10"
    # --config=FILE spelling too, flags before it.
    code, out, err = _main(["train", "--depth", "8", f"--config={path}", "--dry-run", "--run-dir", str(tmp_path / "run")], capsys)
    assert code == 0, err
    assert "(depth 8, width 32)" in dry_run_rows(out)["params phi"]


BAD_FILES = {
    "unknown_key": ("run.yaml", "depth: 8\nwings: 2\n", ["'wings'", "allowed"]),
    "wrong_type": ("run.yaml", "depth: abc\n", ["depth='abc'", "integer"]),
    "wrong_type_json": ("run.json", '{"width": "wide"}', ["width='wide'", "integer"]),
    "bool_for_int": ("run.json", '{"depth": true}', ["depth=True", "integer"]),
    "float_for_int": ("run.yaml", "batch_size: 12.5\n", ["batch_size=12.5", "integer"]),
    "string_for_float": ("run.yaml", "gamma: high\n", ["gamma='high'", "number"]),
    "int_for_bool": ("run.yaml", "layer_norm: 1\n", ["layer_norm=1", "true or false"]),
    "null_for_required": ("run.yaml", "width: null\n", ["width=None", "integer"]),
    "list_for_str": ("run.yaml", "env: [a, b]\n", ["env=['a', 'b']", "string"]),
    "non_mapping_top_level": ("run.yaml", "- depth\n- 8\n", ["mapping", "list"]),
    "scalar_top_level": ("run.json", "16", ["mapping", "int"]),
    "empty_file": ("run.yaml", "", ["mapping", "empty"]),
    "bad_yaml_syntax": ("run.yaml", "depth: [8\nwidth: 4\n", ["not valid YAML", "line"]),
    "bad_json_syntax": ("run.json", '{"depth": 8,}', ["not valid JSON", "line 1"]),
    "duplicate_key": ("run.yaml", "depth: 8\ndepth: 16\n", ["'depth'", "twice"]),
    "alias_and_name": ("run.yaml", "batch-size: 8\nbatch_size: 16\n", ["'batch_size'", "twice"]),
    "not_utf8": ("run.yaml", b"depth: \xff\xfe\n", ["UTF-8"]),
    "unknown_suffix": ("run.toml", "depth = 8\n", ["run.toml", ".yaml", ".json"]),
    "bad_value_in_range": ("run.yaml", "depth: 6\n", ["depth=6", "multiple of 4"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_config_files(case, workdir, tmp_path, capsys):
    name, text, names = BAD_FILES[case]
    path = _write(tmp_path / name, text)
    run_dir = tmp_path / "run"
    code, out, err = _main(["train", "--config", path, "--run-dir", str(run_dir)], capsys)
    line = _assert_one_error_line(code, err, *names)
    if case != "bad_value_in_range":  # range errors come from validate, after the file has loaded
        assert name in line
    assert out == "" and not run_dir.exists() and list(workdir.iterdir()) == []


@pytest.mark.parametrize(
    "argv,names",
    [
        (["--config", "/definitely/not/here.yaml"], ["/definitely/not/here.yaml", "does not exist"]),
        (["--config"], ["--config", "FILE"]),
        (["--config", "--dry-run"], ["--config", "FILE"]),
        (["--config="], ["--config", "FILE"]),
        (["--config", "a.yaml", "--config", "b.yaml"], ["--config", "twice"]),
    ],
)
def test_bad_config_flag(argv, names, workdir, tmp_path, capsys):
    code, out, err = _main(["train", *argv, "--run-dir", str(tmp_path / "run")], capsys)
    _assert_one_error_line(code, err, *names)
    assert not (tmp_path / "run").exists() and list(workdir.iterdir()) == []


def test_config_directory_is_rejected(workdir, tmp_path, capsys):
    folder = tmp_path / "cfg.yaml"
    folder.mkdir()
    code, _, err = _main(["train", "--config", str(folder)], capsys)
    _assert_one_error_line(code, err, "cfg.yaml", "directory")


def test_help_mentions_config_and_dry_run(capsys):
    code, out, _ = _main(["train", "--help"], capsys)
    assert code == 0 and "--config FILE" in out and "--dry-run" in out and "--depth" in out


# ------------------------------------------------------------------------------- dry run


def _mlp(width: int, depth: int, in_size: int, out_size: int, layer_norm: bool = True) -> int:
    """Parameters of a ResidualMLP, counted here from its layers (not via the networks' own count, networks.network_param_count)."""
    ln = 2 * width if layer_norm else 0
    return (in_size * width + width + ln) + depth * (width * width + width + ln) + (width * out_size + out_size)


def test_dry_run_prints_derived_numbers_and_writes_nothing(workdir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()] + ["--critic-width", "48"]
    code, out, err = _main(["train", "--dry-run", *flags, "--run-dir", str(run_dir)], capsys)
    assert code == 0, err
    assert not run_dir.exists() and list(workdir.iterdir()) == [] and list(tmp_path.iterdir()) == [workdir]
    rows = dry_run_rows(out)
    s, g, a = 4, 2, 2  # point mass: (x, y, vx, vy), goal (x, y), action (dx, dy)
    steps_per_epoch = SMALL["num_envs"] * SMALL["unroll_length"]  # 400
    epochs = math.ceil(SMALL["total_env_steps"] / steps_per_epoch)  # 26: 10,001 steps round up
    assert epochs == 26
    assert rows["env"] == "point_open"
    assert rows["state / goal / action sizes"] == f"{s} / {g} / {a}"
    assert rows["epochs"] == f"{epochs}"
    assert rows["env steps per epoch"].startswith(f"{steps_per_epoch}")
    assert rows["sgd steps per epoch"] == f"{SMALL['updates_per_epoch']}"
    assert rows["sgd steps total"] == f"{epochs * SMALL['updates_per_epoch']}"
    assert rows["update-to-data ratio"].startswith(f"1:{steps_per_epoch // SMALL['updates_per_epoch']} ")
    transitions = SMALL["buffer_size"] * SMALL["num_envs"]
    assert rows["buffer capacity"].startswith(f"{transitions:,} transitions")
    buffer_bytes = transitions * 4 * (s + a + g + 1) + 8  # float32 obs, action, goal; int32 episode id; 2 counters
    assert rows["buffer memory"] == f"{buffer_bytes / 1e6:,.2f} MB"
    actor, phi, psi = _mlp(32, 4, s + g, 2 * a), _mlp(48, 4, s + a, 64), _mlp(48, 4, g, 64)
    assert rows["params actor"].startswith(f"{actor:,} ")
    assert rows["params phi"].startswith(f"{phi:,} ")
    assert rows["params psi"].startswith(f"{psi:,} ")
    assert rows["params total"] == f"{actor + phi + psi:,}"
    assert float(rows["flops per sgd update"].split()[0]) > 0
    assert f"run dir (not created): {run_dir}\n" in out


def test_dry_run_with_a_config_file_writes_nothing(workdir, tmp_path, capsys):
    path = _write(tmp_path / "run.json", json.dumps(dict(SMALL, run_dir=str(tmp_path / "from-file"))))
    code, out, err = _main(["train", "--config", path, "--dry-run"], capsys)
    assert code == 0, err
    assert f"run dir (not created): {tmp_path / 'from-file'}\n" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "run.json"] and list(workdir.iterdir()) == []


@pytest.mark.parametrize(
    "flags,names",
    [(["--depth", "6"], ["--depth 6"]), (["--batch-size", "abc"], ["--batch-size", "'abc'"]), (["--env", "point_moon"], ["'point_moon'"])],
)
def test_dry_run_with_a_bad_value_exits_2(flags, names, workdir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, out, err = _main(["train", "--dry-run", *flags, "--run-dir", str(run_dir)], capsys)
    _assert_one_error_line(code, err, *names)
    assert out == "" and not run_dir.exists() and list(workdir.iterdir()) == []


def test_dry_run_checks_the_run_dir(workdir, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text("{}")
    code, _, err = _main(["train", "--dry-run", "--run-dir", str(old)], capsys)
    _assert_one_error_line(code, err, "already holds a run")


def test_analytic_flops_match_xla_cost_analysis():
    """The dry run's analytic FLOPs against XLA's count for a fully unrolled update (width 256: the Dense
    layers dominate; XLA also counts LayerNorm, activations and Adam, hence a few percent more)."""
    from deepcrl.dry_run import plan_run
    from deepcrl.build import build_task_and_agent as build_agent

    config = Config(env="point_open", depth=4, width=256, batch_size=256, network_unroll=1)
    plan = plan_run(config)
    env, agent = build_agent(config)
    state = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    b = config.batch_size
    f32 = jnp.float32
    batch = replay.Batch(
        obs=jax.ShapeDtypeStruct((b, env.state_size), f32),
        action=jax.ShapeDtypeStruct((b, env.action_size), f32),
        goal=jax.ShapeDtypeStruct((b, env.goal_size), f32),
        offset=jax.ShapeDtypeStruct((b,), jnp.int32),
    )
    key = jax.eval_shape(lambda: jax.random.PRNGKey(0))
    cost = jax.jit(agent.update).lower(state, batch, key).compile().cost_analysis()
    xla = (cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"]
    assert 0.85 * xla <= plan.flops_per_update <= 1.02 * xla, (plan.flops_per_update, xla)


def test_from_dict_and_load_reject_non_mappings(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        Config.from_dict([("depth", 8)])
    with pytest.raises(ConfigError, match="unknown config key"):
        Config.from_dict({1: 2, "depth": 8, None: 3})
