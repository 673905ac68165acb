"""One sweep point's job: train its run, or go on with it. What every launcher runs, in a process of its own:

    python -m deepcrl.sweep.job SWEEP_DIR/configs/NAME.json SWEEP_DIR/runs/NAME

- a finished run (its policy checkpoint written) is left as it is;
- a run with a training-state checkpoint is resumed from the newest (exactly: deepcrl train --resume);
- a run begun without one (killed before its first checkpoint) is cleared and started again;
- otherwise the run is trained from its config, as `deepcrl train --config NAME.json` would.

Exit codes: 0 finished, 75 stopped by SIGINT / SIGTERM with a checkpoint (run the job again to go on),
2 bad settings, 1 a failure during training (NaN, a checkpoint that cannot be written).
"""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path

from deepcrl.sweep.index import INTERRUPTED_EXIT as INTERRUPTED  # 75, EX_TEMPFAIL: stopped with a checkpoint; the next attempt resumes


def run_point(config_path: str | Path, run_dir: str | Path) -> int:
    """Train or resume the point's run in this process; its exit code (0, or INTERRUPTED)."""
    from deepcrl.config_files import load_config_file
    from deepcrl.loop import resume, train
    from deepcrl.sweep.index import run_status

    run_dir = Path(run_dir)
    status = run_status(run_dir)
    if status == "done":
        print(f"{run_dir}: already finished", flush=True)
        return 0
    if status == "interrupted":
        print(f"{run_dir}: resuming from its newest training-state checkpoint", flush=True)
        result = resume(run_dir)
    else:
        if status == "started":
            print(f"{run_dir}: begun before without a checkpoint to resume from; starting it again", flush=True)
            shutil.rmtree(run_dir)
        result = train(load_config_file(config_path))
    return INTERRUPTED if result.interrupted else 0


def main(argv: list[str] | None = None) -> int:
    from deepcrl.errors import ConfigError, RunError

    args = sys.argv[1:] if argv is None else argv
    # Slurm signals every process of a job with SIGUSR2 before its time limit or on preemption, whose
    # default action would kill this run at once; the job's worker (deepcrl.sweep.slurm) handles it by
    # asking this run to stop with a checkpoint (SIGTERM), so here it is ignored.
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    if len(args) != 2:
        print("usage: python -m deepcrl.sweep.job CONFIG.json RUN_DIR", file=sys.stderr)
        return 2
    try:
        return run_point(*args)
    except ConfigError as e:
        print(f"deepcrl: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        print(f"deepcrl: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("deepcrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
