"""deepcrl sweep: grids from flags and files, points and their names, one-line errors that write nothing,
and sweeps that run, skip what is finished, and finish after a kill -9 of a point or a Ctrl-C of the
sweep exactly as an uninterrupted sweep does.

The runs are test_resume's tiny open-arena config (150 epochs of milliseconds, a checkpoint every 5):
long in epochs, so easy to interrupt, and the same programs as test_resume's (the compilation cache
serves both).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import shutil
from cli_helpers import assert_one_error_line, run_main
from test_resume import TINY_SETTINGS, metrics_without_time

from dataclasses import replace

from deepcrl.errors import ConfigError
from deepcrl.sweep import expand, load_sweep_file, spec_from_flags


def flags(settings: dict) -> list[str]:
    out = []
    for name, value in settings.items():
        out += [f"--{name.replace('_', '-')}", str(value)]
    return out + ["--no-tensorboard"]


TINY = flags({**TINY_SETTINGS, "total_env_steps": 12000})  # 150 epochs; the step budget changes no program
GRID = ["--seed", "0,1", "--no-batch-seeds"]  # two points: seed 0 and seed 1, one run each


# ---------------------------------------------------------------- grids, points, names (no training)


def test_flags_expand_to_the_product_of_their_axes(tmp_path):
    spec = spec_from_flags(["--depth", "4,8,16", "--agent", "crl,sac+her", "--env", "point_open", "--no-layer-norm", "--width", "32"])
    points = expand(spec, tmp_path)
    assert len(points) == 6
    assert [p.name for p in points[:2]] == ["depth-4_agent-crl_s0", "depth-4_agent-sac+her_s0"]
    assert {(p.config.depth, p.config.agent, p.config.her) for p in points} == {
        (d, a, a == "sac") for d in (4, 8, 16) for a in ("crl", "sac")
    }
    for p in points:  # pass-through settings reach every point; the sweep owns run_dir and progress
        assert (p.config.env, p.config.layer_norm, p.config.width, p.config.progress) == ("point_open", False, 32, False)
        assert Path(p.config.run_dir) == tmp_path / "runs" / p.name


def test_seeds_of_a_point_run_in_one_program_unless_told_otherwise(tmp_path):
    batched = expand(spec_from_flags(["--depth", "4,8", "--seed", "0,1,2,5"]), tmp_path)
    assert [(p.name, p.config.seed, p.config.num_seeds) for p in batched] == [
        ("depth-4_s0-2", 0, 3),
        ("depth-4_s5", 5, 1),  # not consecutive: a program of its own
        ("depth-8_s0-2", 0, 3),
        ("depth-8_s5", 5, 1),
    ]
    one_each = expand(replace(spec_from_flags(["--seed", "0,1"]), batch_seeds=False), tmp_path)
    assert [(p.name, p.config.num_seeds) for p in one_each] == [("s0", 1), ("s1", 1)]


def test_a_sweep_file_holds_what_the_flags_say_and_flags_override_it(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("grid:\n  depth: [4, 8]\n  agent: [crl, sac+her]\nsettings:\n  env: point_open\n  width: 32\n")
    from_file = load_sweep_file(path)
    assert from_file == spec_from_flags(["--depth", "4,8", "--agent", "crl,sac+her", "--env", "point_open", "--width", "32"])
    over = spec_from_flags(["--depth", "16", "--width", "8,16"], base=from_file)
    assert dict(over.axes) == {"agent": from_file.axes[1][1], "width": (8, 16)}
    assert dict(over.settings) == {"env": "point_open", "depth": 16}


@pytest.mark.parametrize(
    "argv, names",
    [
        (["--deep", "4,8"], ["'deep'", "allowed"]),
        (["--depth", "4,x"], ["--depth 'x'", "integer"]),
        (["--depth", "4,5"], ["depth-5_s0", "--depth 5", "multiple of 4"]),
        (["--depth", "4,4"], ["twice"]),
        (["--depth", "4,,8"], ["empty"]),
        (["--seed", "0,1", "--num-seeds", "2"], ["--num-seeds 2", "--no-batch-seeds"]),
        (["--run-dir", "x"], ["run_dir", "sweep"]),
        (["--depth", "4,8", "--launcher", "pbs"], ["--launcher 'pbs'", "choose one of: local, slurm"]),
        (["--depth", "4,8", "--jobs", "0"], ["--jobs 0", "positive"]),
        (["--agent", "crl,sac", "--her"], ["her", "sac"]),
        (["--depth", "4,8", "--partition", "gpu"], ["--partition", "--launcher slurm"]),
        (["--depth", "4,8", "--launcher", "slurm", "--time", "0"], ["--time 0", ">= 1"]),
        (["--depth", "4,8", "--launcher", "slurm", "--slurm-option", "account"], ["--slurm-option 'account'", "KEY=VALUE"]),
    ],
    ids=[
        "unknown-field",
        "bad-value",
        "bad-depth",
        "twice",
        "empty",
        "seeds-twice",
        "run-dir",
        "launcher",
        "jobs",
        "her-for-crl",
        "slurm-option-for-local",
        "slurm-time",
        "slurm-option",
    ],
)
def test_bad_sweeps_give_one_line_errors_and_write_nothing(argv, names, capsys, workdir):
    out = workdir / "sweep"
    code, _, err = run_main(["sweep", "--out", str(out), *argv], capsys)
    assert_one_error_line(code, err, *names)
    assert not out.exists() and not (workdir / "sweeps").exists()


def test_a_folder_holding_another_sweep_is_refused(tmp_path, capsys):
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text(json.dumps(spec_from_flags(["--depth", "4,8"]).to_dict()))
    before = sorted(p.name for p in (tmp_path / "sweep").iterdir())
    code, _, err = run_main(["sweep", "--out", str(tmp_path / "sweep"), "--depth", "4,16"], capsys)
    assert_one_error_line(code, err, "different sweep", "--resume")
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == before


def test_dry_run_lists_the_points_and_writes_nothing(workdir, capsys):
    code, out, err = run_main(["sweep", "--dry-run", "--json", "--depth", "4,8", "--seed", "0,1"], capsys)
    assert code == 0, err
    plan = json.loads(out)
    assert [p["name"] for p in plan["points"]] == ["depth-4_s0-1", "depth-8_s0-1"]
    assert plan["points"][1]["settings"] == {"depth": 8, "seed": 0, "num_seeds": 2}
    assert plan["sweep_dir"].startswith("sweeps/point_u_maze-depth-seed-")
    assert list(workdir.iterdir()) == []


def test_a_mapping_axis_value_bundles_fields_and_an_unknown_key_is_named(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("grid:\n  variant:\n    - {agent: crl}\n    - {agent: td3, her: true, policy_delay: 1}\n")
    points = expand(load_sweep_file(path), tmp_path)
    assert [(p.config.agent, p.config.her, p.config.policy_delay) for p in points] == [("crl", False, 2), ("td3", True, 1)]
    path.write_text("grid:\n  variant:\n    - {agnt: crl}\n")
    with pytest.raises(ConfigError, match="'agnt'"):
        load_sweep_file(path)


# ---------------------------------------------------------------- sweeps that run


def _index(sweep_dir: Path) -> dict:
    return {e["name"]: e for e in json.loads((sweep_dir / "index.json").read_text())["points"]}


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> Path:
    """The two-point sweep, uninterrupted, two jobs side by side."""
    out = tmp_path_factory.mktemp("sweeps") / "uninterrupted"
    from deepcrl.cli import main

    assert main(["sweep", "--out", str(out), "--jobs", "2", *GRID, *TINY]) == 0
    return out


@pytest.mark.xdist_group("finished_sweep")  # the tests comparing with the uninterrupted sweep share one worker's copy
def test_a_sweep_runs_every_point_then_skips_them(finished_sweep, capsys):
    index = _index(finished_sweep)
    assert set(index) == {"s0", "s1"}
    for name, entry in index.items():
        assert (entry["status"], entry["attempts"], entry["returncode"]) == ("done", 1, 0)
        run_dir = finished_sweep / "runs" / name
        assert (run_dir / "checkpoint" / "agent.msgpack").is_file() and len(metrics_without_time(run_dir)) == 15
        assert json.loads((run_dir / "config.json").read_text())["seed"] == int(name[-1])
        assert set(entry["score"]) >= {"eval/success", "eval/time_at_goal"}
    # the seeds differ, so the runs do
    assert metrics_without_time(finished_sweep / "runs" / "s0") != metrics_without_time(finished_sweep / "runs" / "s1")

    code, out, _ = run_main(["sweep", "--out", str(finished_sweep), "--jobs", "2", *GRID, *TINY], capsys)
    assert code == 0 and "running 0" in out
    assert {n: e["attempts"] for n, e in _index(finished_sweep).items()} == {"s0": 1, "s1": 1}
    code, out, _ = run_main(["sweep", "--status", str(finished_sweep), "--json"], capsys)
    status = json.loads(out)
    assert code == 0 and status["counts"] == {"done": 2} and [p["status"] for p in status["points"]] == ["done", "done"]


def _wait(predicate, what: str, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the sweep ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.05)


def _checkpointed_past(run_dir: Path, epoch: int) -> bool:
    """Whether the run holds a training-state checkpoint of `epoch` or later. Only the newest two are kept,
    five epochs apart, so waiting for one epoch's file can miss it; the newest epoch stays past `epoch`
    from then until the run ends."""
    return any(int(p.name.removeprefix("epoch_")) >= epoch for p in (run_dir / "state").glob("epoch_*") if p.name[6:].isdigit())


@pytest.mark.xdist_group("finished_sweep")
def test_a_killed_point_and_an_interrupted_sweep_finish_as_if_never_stopped(finished_sweep, tmp_path, capsys):
    out = tmp_path / "interrupted"
    runs = out / "runs"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "deepcrl.cli", "sweep", "--out", str(out), "--jobs", "1", *GRID, *TINY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # kill -9 the first point's job once it has checkpointed past epoch 20: the sweep goes on with the next point
    _wait(lambda: _checkpointed_past(runs / "s0", 20), "checkpoint of the first point", sweep)
    os.kill(int(_index(out)["s0"]["job"]), signal.SIGKILL)
    # Ctrl-C (SIGINT) of the sweep while the second point runs: its job checkpoints and stops, so does the sweep
    _wait(lambda: _checkpointed_past(runs / "s1", 20), "checkpoint of the second point", sweep)
    sweep.send_signal(signal.SIGINT)
    stdout, stderr = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, (stdout, stderr)
    assert "run the same command again" in stderr
    index = _index(out)
    assert (index["s0"]["status"], index["s0"]["returncode"]) == ("failed", -9)
    assert (index["s1"]["status"], index["s1"]["returncode"]) == ("interrupted", 75)

    code, text, err = run_main(["sweep", "--out", str(out), "--jobs", "2", *GRID, *TINY], capsys)
    assert code == 0, err
    assert "resuming s0" in text and "resuming s1" in text
    for name in ("s0", "s1"):
        assert metrics_without_time(runs / name) == metrics_without_time(finished_sweep / "runs" / name)
        done = (runs / name / "checkpoint" / "agent.msgpack").read_bytes()
        assert done == (finished_sweep / "runs" / name / "checkpoint" / "agent.msgpack").read_bytes()
        assert _index(out)[name]["attempts"] == 2


# ---------------------------------------------------------------- the Slurm launcher, on a real Slurm

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def slurm_cluster():
    """A Slurm cluster answering here: .ci/slurm-up starts a one-node one on localhost (as root; .ci/run
    installs and starts it). Skipped, with the reason, where Slurm is absent, unless DEEPCRL_REQUIRE_SLURM
    is set (CI): then its absence fails the test."""
    script = ROOT / ".ci" / "slurm-up"
    if shutil.which("sbatch") is None and os.geteuid() != 0:
        reason = "Slurm is not installed here (as root, .ci/slurm-up installs Debian's slurm-wlm and munge and starts one node)"
    else:
        probe = subprocess.run([str(script), *([] if os.geteuid() == 0 else ["--check"])], capture_output=True, text=True, timeout=300)
        reason = None if probe.returncode == 0 else f"no Slurm cluster answers here: {(probe.stderr or probe.stdout).strip()}"
    if reason and os.environ.get("DEEPCRL_REQUIRE_SLURM"):
        pytest.fail(reason)
    if reason:
        pytest.skip(reason)


def _slurm_state(job: str) -> tuple[str, str]:
    out = subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%T|%r"], capture_output=True, text=True).stdout.strip()
    state, _, reason = out.partition("|")
    return state, reason


@pytest.mark.xdist_group("finished_sweep")
def test_a_slurm_sweep_with_a_preempted_and_a_killed_job_finishes_as_if_never_stopped(slurm_cluster, finished_sweep, tmp_path):
    """The two-point sweep as a Slurm job array. Point s0's job is preempted (SIGUSR2, what Slurm sends
    before a time limit or on preemption): it checkpoints, requeues itself and resumes. Point s1's job is
    killed (scancel): the sweep submits the point again and it resumes. Both end as the local sweep did."""
    out = tmp_path / "slurm"
    runs = out / "runs"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "deepcrl.cli", "sweep", "--launcher", "slurm", "--time", "15", "--out", str(out), *GRID, *TINY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # both run side by side; once each has a checkpoint, s1's job is killed and s0's preempted
        _wait(lambda: all(any((runs / n / "state").glob("epoch_*")) for n in ("s0", "s1")), "checkpoints of s0 and s1", sweep)
        index = _index(out)
        job0, job1 = (index[n]["job"].removeprefix("slurm:") for n in ("s0", "s1"))
        subprocess.run(["scancel", job1], check=True)
        subprocess.run(["scancel", "--signal=USR2", job0], check=True)
        assert not (runs / "s0" / "checkpoint").exists() and not (runs / "s1" / "checkpoint").exists(), "a run ended before it was stopped"
        # Slurm holds a requeued job back for a while (BeginTime); the test, the cluster's admin, lets it start
        # sooner, but not within the second of its requeue (slurmd refuses its revoked credential till then)
        _wait(lambda: _slurm_state(job0) == ("PENDING", "BeginTime"), "the requeue of s0's job", sweep)
        time.sleep(3)
        subprocess.run(["scontrol", "update", f"jobid={job0}", "StartTime=now"], check=True)
        stdout, stderr = sweep.communicate(timeout=400)
    finally:
        if sweep.poll() is None:
            sweep.kill()
        subprocess.run(["scancel", "--name", f"deepcrl-{out.name}"], capture_output=True)
    assert sweep.returncode == 0, (stdout, stderr)
    assert "s1: its job ended before the run did" in stdout and "submitting it again" in stdout, stdout
    index = _index(out)
    assert (index["s0"]["status"], index["s0"]["attempts"], index["s0"]["job"]) == ("done", 1, f"slurm:{job0}")
    assert (index["s1"]["status"], index["s1"]["attempts"]) == ("done", 2) and index["s1"]["job"] != f"slurm:{job1}"
    log0 = (out / "logs" / "s0.log").read_text()
    assert "(restart 1)" in log0 and "resuming from its newest training-state checkpoint" in log0, log0
    assert "resuming from its newest" in (out / "logs" / "s1.log").read_text()
    for name in ("s0", "s1"):
        assert metrics_without_time(runs / name) == metrics_without_time(finished_sweep / "runs" / name)
        done = (runs / name / "checkpoint" / "agent.msgpack").read_bytes()
        assert done == (finished_sweep / "runs" / name / "checkpoint" / "agent.msgpack").read_bytes()
