"""The benchmark scripts prepared for a GPU run on the CPU with --quick (CI's check that the one
device call they get will not fail on a typo): each writes its JSON with every row measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# a group is handed to a worker before the ungrouped quick tests, so these subprocesses never run last
pytestmark = pytest.mark.xdist_group("benchmark_scripts")

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(name: str, out: Path, *flags: str) -> dict:
    # the children compile tiny programs that run for milliseconds: XLA's slower optimisations only cost time
    env = dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="1", XLA_PYTHON_CLIENT_PREALLOCATE="false")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--quick", "--out", str(out), *flags],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(out.read_text())


def test_gpu_throughput_measures_every_configuration_on_the_cpu(tmp_path):
    result = run_benchmark("gpu_throughput", tmp_path / "gpu_throughput.json")
    rows = result["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    deep, seeds = rows
    assert (deep["critic_depth"], deep["actor_depth"], deep["num_seeds"]) == (8, 4, 1)
    assert (seeds["num_seeds"], seeds["matmul_dtype"]) == (2, "bfloat16")
    for r in rows:
        assert r["env_steps_per_s"] > 0 and r["epoch_compile_s"] > 0 and len(r["epoch_times_s"]) >= 1
        assert r["env_steps_per_s"] == r["num_seeds"] * r["env_steps_per_s_per_seed"]
        # on a CPU the peak is XLA's memory analysis of the epoch; the dry run's estimate is beside it
        assert r["peak_bytes"] > 0 and r["dry_run_estimate_bytes"] > 0 and r["peak_source"].startswith("xla")


def test_checkpoint_stall_writes_async_and_restores_bitwise(tmp_path):
    result = run_benchmark("checkpoint_stall", tmp_path / "checkpoint_stall.json", "--dir", str(tmp_path))
    ways = {s["way"]: s for s in result["summary"]}
    assert set(ways) == {"sync", "async"} and all(s["bitwise"] for s in ways.values())
    assert ways["sync"]["bytes"] == ways["async"]["bytes"] > result["settings"]["buffer_bytes"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("deepcrl-ckpt-")]  # its run folders are removed
