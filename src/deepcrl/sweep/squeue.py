"""Whether a sweep's Slurm jobs are alive, asked of squeue (no accounting database needed).

Apart from the launcher (deepcrl.sweep.slurm) so that the sweep's index can ask it without importing
the launcher; it imports nothing of deepcrl.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

JOB_PREFIX = "slurm:"  # an index entry's `job` for a Slurm job: "slurm:<job id>"
ALIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING"}
ALIVE |= {"SIGNALING", "STAGE_OUT", "PREEMPTED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}  # PREEMPTED: requeued next
REQUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "PREEMPTED"}  # after RUNNING: requeued (not ending)


def slurm_job_id(entry: Any) -> str | None:
    """The Slurm job id of an index entry whose job is one ("slurm:<id>"), else None."""
    job = entry.job or ""
    return job[len(JOB_PREFIX) :] if job.startswith(JOB_PREFIX) else None


def job_states(job_ids: list[str]) -> dict[str, str] | None:
    """{job id: Slurm state} for those of `job_ids` that squeue still knows (array tasks as "ARRAY_TASK");
    None if squeue cannot be asked now (not here, or it failed: a busy controller), so that nothing is
    taken for dead on a failed query."""
    if not job_ids:
        return {}
    if shutil.which("squeue") is None:
        return None
    user = os.environ.get("USER") or _user()
    try:
        out = subprocess.run(
            ["squeue", "-h", "-r", "-u", user, "-o", "%i|%T"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    states = {}
    for line in out.splitlines():
        jid, _, state = line.strip().partition("|")
        states[jid] = state.strip().upper()
    wanted = set(job_ids)
    return {jid: state for jid, state in states.items() if jid in wanted}


def _user() -> str:
    import getpass

    return getpass.getuser()


def alive_jobs(entries: list[Any]) -> dict[str, str] | None:
    """{point name: state} of the entries whose Slurm job is queued or running; None if squeue cannot say."""
    ids = {slurm_job_id(e): e.name for e in entries if slurm_job_id(e)}
    states = job_states(list(ids))
    if states is None:
        return None
    return {ids[jid]: state for jid, state in states.items() if state in ALIVE}
