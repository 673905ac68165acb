"""The command line: every kind of bad input gives exit code 2, one `deepcrl: error:` line naming the
bad value, no traceback and nothing written; plus the happy path train -> eval --json."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deepcrl.config import Config
from cli_helpers import assert_one_error_line as _assert_one_error_line, run_main as _main

DEEPCRL = shutil.which("deepcrl")


def _flags(config: dict) -> list[str]:
    """Command-line flags spelling out a Config's fields."""
    out = []
    for name, value in config.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + name.replace("_", "-"))
        elif value is not None:
            out += [flag, str(value)]
    return out


def _maze(tmp_path: Path, text: str) -> str:
    path = tmp_path / "maze.txt"
    path.write_text(text)
    return f"maze:{path}"


BAD_TRAIN = {
    "unknown_env": (["--env", "point_moon"], ["'point_moon'"]),
    "unknown_layout": (["--env", "point", "--layout", "spiral"], ["'spiral'"]),
    "conflicting_layout": (["--env", "point_open", "--layout", "u_maze"], ["'u_maze'"]),
    "depth_not_multiple_of_4": (["--depth", "6"], ["--depth 6"]),
    "actor_depth_not_multiple_of_4": (["--actor-depth", "10"], ["--actor-depth 10"]),
    "critic_depth_zero": (["--critic-depth", "0"], ["--critic-depth 0"]),
    "width_zero": (["--width", "0"], ["--width 0"]),
    "batch_negative": (["--batch-size", "-1"], ["--batch-size -1"]),
    "num_envs_zero": (["--num-envs", "0"], ["--num-envs 0"]),
    "gamma_one": (["--gamma", "1.0"], ["--gamma 1.0"]),
    "unknown_energy": (["--energy", "l3"], ["'l3'"]),
    "actor_random_goals_above_one": (["--actor-random-goals", "1.5"], ["--actor-random-goals 1.5"]),
    "actor_random_goals_with_sac": (["--agent", "sac", "--actor-random-goals", "0.5"], ["--actor-random-goals 0.5", "crl"]),
    "batch_larger_than_buffer": (
        [
            "--num-envs",
            "4",
            "--buffer-size",
            "100",
            "--episode-length",
            "50",
            "--prefill-steps",
            "10",
            "--unroll-length",
            "10",
            "--batch-size",
            "81",
        ],
        ["--batch-size 81", "80"],
    ),
    "buffer_smaller_than_episode": (
        ["--buffer-size", "20", "--episode-length", "50", "--prefill-steps", "10", "--unroll-length", "10"],
        ["--buffer-size 20"],
    ),
    "depth_not_an_integer": (["--depth", "abc"], ["--depth", "'abc'"]),
    "seed_not_an_integer": (["--seed", "1.5"], ["--seed", "'1.5'"]),
    "unknown_flag": (["--wings", "2"], ["--wings"]),
    "more_devices_than_visible": (["--num-devices", "64"], ["--num-devices 64", "XLA_FLAGS"]),
    "batch_does_not_split_over_devices": (["--num-devices", "3"], ["--num-envs 256", "3 devices"]),
    "num_seeds_zero": (["--num-seeds", "0"], ["--num-seeds 0"]),
    "seeds_past_the_largest": (["--seed", "4294967295", "--num-seeds", "2"], ["--seed 4294967295", "--num-seeds 2"]),
    "unknown_matmul_dtype": (["--matmul-dtype", "float16"], ["'float16'", "bfloat16"]),
    "unknown_agent": (["--agent", "ppo"], ["--agent 'ppo'", "gcbc"]),
    "her_with_crl": (["--her"], ["--her is not allowed", "--agent sac"]),
    "td3_flag_with_sac": (["--agent", "sac", "--policy-delay", "4"], ["--policy-delay 4", "--agent td3"]),
    "dense_reward_with_gcbc": (["--agent", "gcbc", "--reward", "dense"], ["--reward 'dense'", "--agent gcbc"]),
    "her_fraction_above_one": (["--agent", "td3", "--her", "--her-fraction", "2"], ["--her-fraction 2.0"]),
}


@pytest.mark.parametrize("case", sorted(BAD_TRAIN))
def test_bad_train_flags(case, workdir, capsys):
    flags, names = BAD_TRAIN[case]
    run_dir = workdir / "run"
    code, out, err = _main(["train", *flags, "--run-dir", str(run_dir)], capsys)
    _assert_one_error_line(code, err, *names)
    assert not run_dir.exists() and list(workdir.iterdir()) == []


MAZES = {
    "ragged": ("#####\n#r.g#\n#..#\n#####\n", ["row 2", "4 cells"]),
    "no_start": ("#####\n#..g#\n#####\n", ["no start"]),
    "no_goal": ("#####\n#r..#\n#####\n", ["no goal"]),
    "unreachable_goal": ("#####\n#r#g#\n#####\n", ["not reachable", "row 1, col 3"]),
    "bad_character": ("#####\n#r?g#\n#####\n", ["'?'"]),
    "empty": ("\n\n", ["empty"]),
}


@pytest.mark.parametrize("case", sorted(MAZES))
def test_bad_maze_files(case, workdir, tmp_path, capsys):
    text, names = MAZES[case]
    layout = _maze(tmp_path, text)
    run_dir = workdir / "run"
    code, _, err = _main(["train", "--env", "point", "--layout", layout, "--run-dir", str(run_dir)], capsys)
    line = _assert_one_error_line(code, err, *names)
    assert "maze.txt" in line
    assert not run_dir.exists() and list(workdir.iterdir()) == []


def test_missing_maze_file(workdir, tmp_path, capsys):
    code, _, err = _main(["train", "--env", "point", "--layout", f"maze:{tmp_path / 'nope.txt'}"], capsys)
    _assert_one_error_line(code, err, "nope.txt", "does not exist")
    assert list(workdir.iterdir()) == []


def test_run_dir_under_a_regular_file(workdir, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run_dir = blocker / "sub" / "run"
    code, _, err = _main(["train", "--run-dir", str(run_dir)], capsys)
    _assert_one_error_line(code, err, str(run_dir))
    assert blocker.read_text() == "not a folder" and list(workdir.iterdir()) == []


def test_run_dir_is_a_file(workdir, tmp_path, capsys):
    target = tmp_path / "run.txt"
    target.write_text("x")
    code, _, err = _main(["train", "--run-dir", str(target)], capsys)
    _assert_one_error_line(code, err, str(target))
    assert target.read_text() == "x"


def test_run_dir_that_already_holds_a_run(workdir, tmp_path, capsys):
    run_dir = tmp_path / "old-run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    (run_dir / "metrics.csv").write_text("epoch\n1\n")
    code, _, err = _main(["train", "--run-dir", str(run_dir)], capsys)
    _assert_one_error_line(code, err, str(run_dir), "already holds a run")
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.json", "metrics.csv"]
    assert (run_dir / "config.json").read_text() == "{}"


@pytest.mark.parametrize(
    "argv,names",
    [
        (["fly"], ["'fly'", "train", "eval"]),
        ([], ["command"]),
        (["eval"], ["eval"]),
        (["eval", "/definitely/not/a/run"], ["/definitely/not/a/run"]),
        (["eval", "/definitely/not/a/run", "--num-envs", "0"], ["--num-envs 0"]),
        (["eval", "/definitely/not/a/run", "--num-envs", "many"], ["--num-envs", "'many'"]),
    ],
)
def test_bad_commands_and_eval_arguments(argv, names, workdir, capsys):
    code, _, err = _main(argv, capsys)
    _assert_one_error_line(code, err, *names)
    assert list(workdir.iterdir()) == []


def test_help_exits_zero(capsys):
    code, out, _ = _main(["--help"], capsys)
    assert code == 0 and "deepcrl train" in out and "deepcrl eval" in out
    code, out, _ = _main(["train", "--help"], capsys)
    assert code == 0 and "--depth" in out and "--run-dir" in out
    code, out, _ = _main(["eval", "--help"], capsys)
    assert code == 0 and "--json" in out


def test_every_train_flag_has_its_help_text(capsys, monkeypatch):
    # tyro reads each Config field's help from its comment; a comment the formatter moved inside
    # parentheses is lost and the flag shows only "(default: ...)".
    monkeypatch.setenv("COLUMNS", "400")
    code, out, _ = _main(["train", "--help"], capsys)
    assert code == 0
    entries = re.split(r"\n[│ ]{1,3}(?=--[a-z])", out)  # one entry per flag, boxed or plain
    described = {}
    for entry in entries[1:]:
        flag = entry.split()[0].rstrip(",")
        text = re.sub(r"\(default: [^)]*\)", "", " ".join(entry.replace("│", " ").split()[1:]))
        described[flag] = len(re.findall(r"[a-z]{3,}", re.sub(r"\{None\}\|\w+|--[\w-]+|\b[A-Z]+\b", "", text)))
    for field in dataclasses.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        assert described.get(flag, 0) >= 2, f"{flag}: no help text in `deepcrl train --help`"


# ------------------------------------------------------------------------------- real subprocesses


def _run(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="80", PYTHONWARNINGS="ignore")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(DEEPCRL is None, reason="the deepcrl console script is not installed")
def test_console_script_bad_input(tmp_path):
    run_dir = tmp_path / "run"
    proc = _run([DEEPCRL, "train", "--depth", "abc", "--run-dir", str(run_dir)], cwd=tmp_path)
    _assert_one_error_line(proc.returncode, proc.stderr, "--depth", "'abc'")
    assert proc.stdout == ""
    proc = _run([sys.executable, "-m", "deepcrl.cli", "train", "--depth", "6", "--run-dir", str(run_dir)], cwd=tmp_path)
    _assert_one_error_line(proc.returncode, proc.stderr, "--depth 6")
    assert not run_dir.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.skipif(DEEPCRL is None, reason="the deepcrl console script is not installed")
def test_console_script_train_then_eval_json(small_run, tmp_path, capsys):
    # The shared small config (compiled programs come from the session's cache), one epoch only.
    config = dict(small_run, total_env_steps=small_run["num_envs"] * small_run["unroll_length"], num_evals=1, tensorboard=False, seed=3)
    run_dir = tmp_path / "run"
    proc = _run([DEEPCRL, "train", *_flags(config), "--run-dir", str(run_dir)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    for name in ("config.json", "metrics.csv", "checkpoint/config.json", "checkpoint/agent.msgpack"):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "config.json").read_text())
    assert {k: saved[k] for k in config} == config
    assert Path(saved["run_dir"]) == run_dir

    code, out, err = _main(["eval", str(run_dir), "--json", "--num-envs", "8", "--seed", "1"], capsys)
    assert code == 0, err
    metrics = json.loads(out)
    assert 0.0 <= metrics["eval/success"] <= 1.0
    assert {"eval/time_at_goal", "eval/final_distance"} <= set(metrics)
    # The table form prints the same metrics.
    code, out, err = _main(["eval", str(run_dir), "--num-envs", "8", "--seed", "1"], capsys)
    assert code == 0 and "eval/success" in out

    # Training again into the finished run is refused, and leaves it untouched.
    before = (run_dir / "metrics.csv").read_text()
    code, _, err = _main(["train", *_flags(config), "--run-dir", str(run_dir)], capsys)
    _assert_one_error_line(code, err, "already holds a run")
    assert (run_dir / "metrics.csv").read_text() == before
