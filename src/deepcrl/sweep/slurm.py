"""The Slurm launcher: each point a Slurm job (one job array per submission), through submitit.

Every job runs the same point job as the local launcher (`python -m deepcrl.sweep.job CONFIG RUN_DIR`),
as a child of submitit's worker on the compute node; its output goes to the sweep's logs/NAME.log, as a
local job's does, and submitit's own files to SWEEP_DIR/slurm/ (or --slurm-dir).

Three ways a job can stop before its run is finished, and what happens:

- **time limit or preemption** (Slurm sends SIGUSR2, `--signal USR2@90` before the time limit; submitit
  catches it): the worker asks the run to stop (SIGTERM: it writes a training-state checkpoint after its
  current epoch), and submitit requeues the same job, which resumes from that checkpoint;
- **killed** (`scancel`, a node failure, the out-of-memory killer): the job ends without finishing its
  run; the sweep's watcher (the `deepcrl sweep` process, unless `--no-wait`) submits the point again,
  up to `--max-attempts` times, and the new job resumes from the newest checkpoint;
- **failed** (a NaN, bad settings: exit code 1 or 2): not retried; the point is `failed`, its log says why.

Whether a job is alive is asked of `squeue` (no accounting database needed); what a finished job
returned, of submitit's result file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

from deepcrl.errors import ConfigError
from deepcrl.sweep.index import INTERRUPTED_EXIT, Entry, SweepIndex, run_status
from deepcrl.sweep.squeue import ALIVE, JOB_PREFIX, REQUEUED, alive_jobs, job_states, slurm_job_id

STOP_WAIT_S = 25  # how long a preempted job waits for its run's checkpoint (Slurm's KillWait is 30 s by default)
POLL_S = 5.0  # how often the watcher asks squeue


def check_slurm() -> None:
    """ConfigError unless sbatch and squeue are here and the cluster answers."""
    missing = [c for c in ("sbatch", "squeue", "scontrol") if shutil.which(c) is None]
    if missing:
        raise ConfigError(
            f"--launcher slurm needs Slurm's commands here ({', '.join(missing)} not found); "
            "run the sweep on a Slurm login node, or use --launcher local"
        )
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ConfigError("--launcher slurm needs submitit (pip install submitit)") from None


class PointJob:
    """What a Slurm job runs: the point's job as a child process, and on SIGUSR2 (submitit's
    `checkpoint`) a clean stop with a checkpoint, after which submitit requeues the job."""

    def __init__(self, config_path: str, run_dir: str, log_path: str, env: dict[str, str]):
        self.config_path, self.run_dir, self.log_path, self.env = str(config_path), str(run_dir), str(log_path), dict(env)
        self._proc: subprocess.Popen | None = None
        self._code: int | None = None

    def __getstate__(self):
        return {"config_path": self.config_path, "run_dir": self.run_dir, "log_path": self.log_path, "env": self.env}

    def __setstate__(self, state):
        self.__init__(**state)

    def __call__(self) -> int:
        from deepcrl.sweep.local import job_command

        command = job_command(Path(self.config_path), self.run_dir)
        job = os.environ.get("SLURM_ARRAY_JOB_ID")
        job = f"{job}_{os.environ.get('SLURM_ARRAY_TASK_ID')}" if job else os.environ.get("SLURM_JOB_ID", "?")
        restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
        Path(self.log_path).parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            log.write(f"=== slurm job {job} (restart {restarts}), {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(command)}\n")
            log.flush()
            self._proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
            code = None
            while code is None:
                code = self._reap()
                if code is None:
                    time.sleep(0.5)
            log.write(f"=== exit code {code}\n")
        if code not in (0, INTERRUPTED_EXIT):
            raise RuntimeError(f"the run failed with exit code {code}; see {self.log_path}")
        return code

    def _reap(self) -> int | None:
        """The child's exit code once it has ended (None while it runs); never blocks."""
        if self._code is not None or self._proc is None:
            return self._code
        try:
            pid, status = os.waitpid(self._proc.pid, os.WNOHANG)
        except ChildProcessError:
            return self._code if self._code is not None else -1  # reaped just now by the other caller
        if pid == 0:
            return None
        self._code = self._proc.returncode = os.waitstatus_to_exitcode(status)
        return self._code

    def checkpoint(self, *args, **kwargs):
        """Called by submitit on SIGUSR2 (time limit or preemption): stop the run with a checkpoint, and
        hand submitit the same job to requeue; it resumes from that checkpoint."""
        from submitit.helpers import DelayedSubmission

        if self._proc is not None and self._reap() is None:
            self._proc.send_signal(signal.SIGTERM)
            deadline = time.time() + STOP_WAIT_S
            while self._reap() is None and time.time() < deadline:
                time.sleep(0.2)
            with open(self.log_path, "a") as log:
                log.write(f"=== stopped for preemption or the time limit (exit code {self._code}); the job is requeued\n")
        return DelayedSubmission(PointJob(self.config_path, self.run_dir, self.log_path, self.env))


def _executor(index: SweepIndex, options, slurm_dir: Path):
    import submitit

    executor = submitit.SlurmExecutor(folder=str(slurm_dir / "%j"), max_num_timeout=options.max_requeues)
    params: dict = {"time": options.time_min, "job_name": f"deepcrl-{index.dir.name}", "signal_delay_s": options.signal_delay_s}
    if options.partition:
        params["partition"] = options.partition
    if options.gpus_per_job:
        params["gpus_per_node"] = options.gpus_per_job
    if options.cpus_per_job:
        params["cpus_per_task"] = options.cpus_per_job
    if options.mem_gb:
        params["mem"] = f"{options.mem_gb}GB"
    if options.jobs:
        params["array_parallelism"] = options.jobs
    if options.slurm_setup:
        params["setup"] = list(options.slurm_setup)
    extra = dict(item.split("=", 1) for item in options.slurm_options)
    if extra:
        params["additional_parameters"] = extra
    executor.update_parameters(**params)
    return executor


def submit(index: SweepIndex, names: list[str], options, env: dict[str, str], slurm_dir: Path) -> dict[str, str]:
    """Submit the points `names` as one job array; {name: job id}. The index records each job."""
    executor = _executor(index, options, slurm_dir)
    jobs = {}
    try:
        with executor.batch():
            for name in names:
                entry = index.entries[name]
                fn = PointJob(str(index.config_path(name)), entry.run_dir, str(index.log_path(name)), env)
                jobs[name] = executor.submit(fn)
    except Exception as e:  # sbatch refused the array (a partition that does not exist, a time over the limit)
        message = str(e).strip().splitlines()
        raise ConfigError(f"sbatch refused the sweep's jobs: {message[-1] if message else e}") from None
    ids = {}
    for name, job in jobs.items():
        entry = index.entries[name]
        entry.attempts += 1
        entry.status, entry.job, entry.started, entry.returncode = "queued", JOB_PREFIX + job.job_id, time.time(), None
        ids[name] = job.job_id
    index.save()
    return ids


def _job(slurm_dir: Path, job_id: str):
    import submitit

    return submitit.SlurmJob(folder=str(slurm_dir / "%j"), job_id=job_id)


def job_outcome(slurm_dir: Path, job_id: str) -> int | None:
    """What an ended job returned: the run's exit code (0, 75, or 1 for a failure), None if it left no
    result (killed by scancel, a node failure or the out-of-memory killer)."""
    job = _job(slurm_dir, job_id)
    if not job.paths.result_pickle.exists():
        return None
    try:
        return int(job.result())
    except Exception:  # the worker raised: the run failed (its log says why)
        return 1


def run_slurm(
    index: SweepIndex, names: list[str], options, env: dict[str, str], report: Callable[[str, Entry], None], poll_s: float = POLL_S
) -> str | None:
    """Submit `names` (points whose jobs are already queued or running are watched, not submitted
    again); unless options.wait is False, watch every job to its end, submitting killed points again up
    to options.max_attempts times. Returns the signal that stopped the watching early, if any."""
    from deepcrl.sweep.local import _Signals

    slurm_dir = Path(options.slurm_dir) if options.slurm_dir else index.dir / "slurm"
    alive = alive_jobs([index.entries[n] for n in names])
    if alive is None:
        raise ConfigError("squeue did not answer; the sweep cannot tell which of its jobs still run; try again when it does")
    watching = {name: slurm_job_id(index.entries[name]) for name in alive}
    for name, state in alive.items():
        index.entries[name].status = "running" if state == "RUNNING" else "queued"
        report("adopt", index.entries[name])
    fresh = [n for n in names if n not in alive]
    if fresh:
        watching.update(submit(index, fresh, options, env, slurm_dir))
        for name in fresh:
            report("submit", index.entries[name])
    if not options.wait:
        return None
    with _Signals() as signals:
        last_states: dict[str, str] = {}
        gone: dict[str, int] = {}  # name -> polls in a row that found its job not alive
        while watching and not signals.count:
            states = job_states(list(watching.values()))
            if states is None:  # squeue failed (a busy controller): ask again later, take nothing for dead
                time.sleep(poll_s)
                continue
            resubmit = []
            for name, jid in list(watching.items()):
                entry = index.entries[name]
                state = states.get(jid)
                if state in ALIVE:
                    status = "running" if state == "RUNNING" else "queued"
                    before = last_states.get(name)
                    if status == "running" and before != "RUNNING":
                        report("start", entry)
                    elif before == "RUNNING" and state in REQUEUED:
                        report("requeued", entry)
                    if status != entry.status:
                        entry.status = status
                        index.save()
                    last_states[name] = state
                    gone.pop(name, None)
                    continue
                # Not alive. One look is not taken for the end (around a requeue, or while the controller
                # is busy, squeue may miss a job for a moment): a job has ended when it looks so twice in
                # a row, or when it left its result (a job that requeued itself leaves none).
                gone[name] = gone.get(name, 0) + 1
                if gone[name] < 2 and not _job(slurm_dir, jid).paths.result_pickle.exists():
                    continue
                del watching[name]
                gone.pop(name, None)
                entry.returncode = job_outcome(slurm_dir, jid)
                entry.status = "ended"
                index.refresh()
                if entry.status != "done" and entry.returncode in (None, INTERRUPTED_EXIT):
                    if entry.attempts < options.max_attempts:
                        resubmit.append(name)
                        entry.status = run_status(entry.run_dir)
                        report("killed", entry)
                        continue
                    entry.status = "failed"
                index.save()
                report("end", entry)
            if resubmit:
                watching.update(submit(index, resubmit, options, env, slurm_dir))
                for name in resubmit:
                    report("submit", index.entries[name])
            if watching:
                time.sleep(poll_s)
    return signals.name
