"""The local launcher: up to N point jobs side by side on this machine, each its own process.

Each job is `python -m deepcrl.sweep.job CONFIG RUN_DIR` (deepcrl.sweep.job), in a session of its own
so that a Ctrl-C at the terminal reaches only the sweep: on the first SIGINT / SIGTERM the sweep starts
nothing more and asks every running job to stop (SIGTERM: the job writes a checkpoint after its
current epoch and exits); a second Ctrl-C kills them (SIGKILL) at once. Rerunning the sweep resumes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, IO

from deepcrl.sweep.index import Entry, SweepIndex, run_status


def job_command(config_path: Path, run_dir: str) -> list[str]:
    return [sys.executable, "-m", "deepcrl.sweep.job", str(config_path), str(run_dir)]


class _Signals:
    def __init__(self):
        self.count = 0
        self.name: str | None = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame):
        self.count += 1
        self.name = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        return False


def run_local(index: SweepIndex, names: list[str], jobs: int, env: dict[str, str], report: Callable[[str, Entry], None]) -> str | None:
    """Run the points `names` with at most `jobs` at a time; returns the name of the signal that stopped
    the sweep early (None if every job ran to its end). `report(event, entry)` is told of each start and end."""
    queue = list(names)
    running: dict[str, tuple[subprocess.Popen, IO]] = {}
    child_env = {**os.environ, **env}
    with _Signals() as signals:
        forwarded = 0
        while queue or running:
            if signals.count and forwarded < signals.count:
                sig = signal.SIGTERM if signals.count == 1 else signal.SIGKILL
                for proc, _ in running.values():
                    try:
                        proc.send_signal(sig)
                    except ProcessLookupError:
                        pass
                forwarded = signals.count
            while queue and len(running) < jobs and not signals.count:
                name = queue.pop(0)
                entry = index.entries[name]
                log_path = index.log_path(name)
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log = log_path.open("a")
                command = job_command(index.config_path(name), entry.run_dir)
                log.write(f"=== attempt {entry.attempts + 1}, {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(command)}\n")
                log.flush()
                proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env, start_new_session=True)
                entry.attempts += 1
                entry.status, entry.job, entry.started, entry.returncode = "running", str(proc.pid), time.time(), None
                running[name] = (proc, log)
                index.save()
                report("start", entry)
            for name, (proc, log) in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                log.write(f"=== exit code {code}\n")
                log.close()
                del running[name]
                entry = index.entries[name]
                entry.returncode, entry.status = code, "ended"
                index.refresh()  # done, interrupted (a checkpoint to resume from), started, or failed
                if signals.count and entry.status == "failed":
                    entry.status = run_status(entry.run_dir)  # killed by the sweep's second Ctrl-C: not a failure of its own
                index.save()
                report("end", entry)
            time.sleep(0.1)
    return signals.name
