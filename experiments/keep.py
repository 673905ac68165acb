"""Copy what a sweep's figures and tables need into experiments/results/NAME/ (its sweep.json, index.json,
configs, and each run's config.json and metrics.csv, a learner's columns included), leaving checkpoints and logs
behind, so `deepcrl plot experiments/results/NAME` and `python experiments/summary.py ...` work from the
repository alone.

    python experiments/keep.py sweeps/serpentine_depth
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

KEPT = ("sweep.json", "index.json", "configs/*.json", "runs/*/config.json", "runs/*/metrics.csv")


def keep(sweep_dir: Path, results: Path = Path("experiments/results")) -> Path:
    out = results / sweep_dir.name
    for pattern in KEPT:
        for path in sorted(sweep_dir.glob(pattern)):
            target = out / path.relative_to(sweep_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *map(str, sorted(out.rglob("*")))], capture_output=True, text=True
    ).stdout.split()
    if ignored:  # what git ignores would not reach the repository: say so rather than keep nothing in silence
        raise SystemExit(f"{len(ignored)} kept files are ignored by git (e.g. {ignored[0]}); fix .gitignore")
    return out


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(keep(Path(arg)))
