"""A sweep directory on disk: what it runs, the index of its points, and each point's status.

    SWEEP_DIR/sweep.json          the SweepSpec (a rerun must ask for the same sweep)
    SWEEP_DIR/index.json          every point: name, values, run directory, status, attempts, last exit code, job
    SWEEP_DIR/configs/NAME.json   each point's Config (what its job trains)
    SWEEP_DIR/runs/NAME/          each point's run directory (deepcrl train's: metrics.csv, checkpoint/, state/)
    SWEEP_DIR/logs/NAME.log       each point's output, one block per attempt

A point's status is read from its run directory, so it is right even after the sweep's own process was
killed: `done` (the policy checkpoint is written: the run finished), `interrupted` (a training-state
checkpoint to resume from), `started` (begun, nothing to resume from: it starts again), `pending`
(nothing yet); the index adds `running` (its job is alive), `queued` (its Slurm job waits for a node)
and `failed` (its last attempt exited with an error). Every file here is written whole (a temporary
file renamed over it), so a kill leaves the old version or the new one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepcrl.checkpoints import POLICY_DIR, list_train_states
from deepcrl.errors import ConfigError
from deepcrl.logger import read_metrics
from deepcrl.metrics import final_score
from deepcrl.sweep.grid import Point, SweepSpec
from deepcrl.sweep.squeue import alive_jobs, slurm_job_id

SPEC_FILE, INDEX_FILE = "sweep.json", "index.json"
INTERRUPTED_EXIT = 75  # a job stopped by SIGINT / SIGTERM after writing a checkpoint (deepcrl.sweep.job)
STATUSES = ("done", "running", "queued", "interrupted", "started", "failed", "pending")


def write_json(path: Path, data: Any) -> None:
    """Write JSON whole: a temporary file in the same folder, renamed over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def run_status(run_dir: str | Path) -> str:
    """done, interrupted, started or pending, from the files of a run directory."""
    run_dir = Path(run_dir)
    if (run_dir / POLICY_DIR / "config.json").is_file():
        return "done"
    if list_train_states(run_dir):
        return "interrupted"
    if run_dir.exists() and any(run_dir.iterdir()):
        return "started"
    return "pending"


def pid_alive(pid: int | None, run_dir: str | Path | None = None) -> bool:
    """Whether process `pid` lives (and, where /proc says, is the job of `run_dir`)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if run_dir is not None and cmdline.exists():
        try:
            return str(run_dir) in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
    return True


@dataclass
class Entry:
    """One point's line of the index."""

    name: str
    values: dict[str, Any]
    run_dir: str
    status: str = "pending"
    attempts: int = 0  # jobs started for this point
    returncode: int | None = None  # the last job's exit code (None: none ended yet)
    job: str | None = None  # the point's job: a process id (local launcher) or "slurm:<job id>"
    started: float | None = None  # time.time() of the last start
    finished: float | None = None  # time.time() when it was last seen done
    score: dict[str, float] = field(default_factory=dict)  # the last-5 evaluation means of a done run

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SweepIndex:
    """The sweep directory: its spec, its points, their statuses; only the sweep's own process writes it."""

    def __init__(self, sweep_dir: str | Path, spec: SweepSpec, points: list[Point]):
        self.dir = Path(sweep_dir)
        self.spec = spec
        self.points = {p.name: p for p in points}
        old = self._read_entries()
        self.entries = {p.name: old.get(p.name) or Entry(name=p.name, values=p.values, run_dir="") for p in points}
        for name, entry in self.entries.items():  # where the folder is now (a sweep folder may have been moved)
            entry.run_dir = str(self.dir / "runs" / name)

    # -- opening --------------------------------------------------------------------------------
    @staticmethod
    def stored_spec(sweep_dir: str | Path) -> SweepSpec | None:
        path = Path(sweep_dir) / SPEC_FILE
        if not path.is_file():
            return None
        try:
            return SweepSpec.from_dict(json.loads(path.read_text()), f"{path}")
        except (ValueError, ConfigError) as e:
            raise ConfigError(f"{path} is not a sweep's spec ({e}); give the folder a deepcrl sweep wrote") from None

    def check_same_sweep(self) -> None:
        """ConfigError if the folder holds a different sweep (a rerun must repeat the same grid and settings)."""
        stored = self.stored_spec(self.dir)
        if stored is None:
            if self.dir.exists() and any(self.dir.iterdir()):
                raise ConfigError(f"--out {str(self.dir)!r} is not empty and holds no sweep.json; choose another --out")
            return
        if stored == self.spec:
            return
        a, b = stored.to_dict(), self.spec.to_dict()
        key = next(k for k in a if a[k] != b[k])
        raise ConfigError(
            f"{str(self.dir)!r} holds a different sweep (its {key} is {json.dumps(a[key])}, this one's {json.dumps(b[key])}); "
            "rerun its own command (deepcrl sweep --resume DIR) or choose another --out"
        )

    def _read_entries(self) -> dict[str, Entry]:
        path = self.dir / INDEX_FILE
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
            return {e["name"]: Entry(**e) for e in data["points"]}
        except (ValueError, KeyError, TypeError):
            return {}  # a foreign or damaged index: the statuses are read again from the run directories

    # -- state ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Statuses from the run directories (and whether a recorded job still runs: its process, or squeue)."""
        live = [e for e in self.entries.values() if e.status in ("running", "queued")]
        on_slurm = alive_jobs(live) if live else {}
        for entry in self.entries.values():
            if on_slurm is None and slurm_job_id(entry) and entry.status in ("running", "queued"):
                continue  # squeue cannot say now: keep what the index last knew
            if on_slurm and entry.name in on_slurm:
                entry.status = "running" if on_slurm[entry.name] == "RUNNING" else "queued"
                continue
            if entry.status == "running" and _job_alive(entry):
                continue
            status = run_status(entry.run_dir)
            if status == "done":
                if entry.status != "done" or not entry.score:
                    entry.score = _score(entry.run_dir)
                    entry.finished = entry.finished or time.time()
            elif entry.returncode not in (None, 0, INTERRUPTED_EXIT):
                status = "failed"
            entry.status = status

    def save(self) -> None:
        write_json(self.dir / SPEC_FILE, self.spec.to_dict())
        write_json(
            self.dir / INDEX_FILE,
            {"spec": self.spec.fingerprint(), "updated": time.time(), "points": [e.to_dict() for e in self.entries.values()]},
        )

    def write_configs(self) -> None:
        for name, point in self.points.items():
            path = self.config_path(name)
            if not path.is_file() or path.read_text() != point.config.to_json():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text(point.config.to_json())
                os.replace(tmp, path)

    def config_path(self, name: str) -> Path:
        return self.dir / "configs" / f"{name}.json"

    def log_path(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for e in self.entries.values():
            out[e.status] += 1
        return {k: v for k, v in out.items() if v}


def _job_alive(entry: Entry) -> bool:
    if entry.job is None or not str(entry.job).isdigit():
        return False  # not a local process id: its launcher tells
    return pid_alive(int(entry.job), entry.run_dir)


def _score(run_dir: str) -> dict[str, float]:
    try:
        history = read_metrics(run_dir)
    except (OSError, ValueError, KeyError):
        return {}
    if not history:
        return {}
    means = {k: v for k, v in final_score(history).items() if "/" not in k.removeprefix("learner/").removeprefix("eval/")}
    return {k: round(v, 6) for k, v in means.items()}


def read_sweep(sweep_dir: str | Path) -> SweepIndex:
    """The sweep in `sweep_dir` as written by deepcrl sweep, statuses refreshed from its run directories."""
    from deepcrl.sweep.grid import expand

    sweep_dir = Path(sweep_dir)
    spec = SweepIndex.stored_spec(sweep_dir)
    if spec is None:
        raise ConfigError(f"{str(sweep_dir)!r} holds no sweep (no {SPEC_FILE}); give a folder written by deepcrl sweep")
    index = SweepIndex(sweep_dir, spec, expand(spec, sweep_dir))
    index.refresh()
    return index
