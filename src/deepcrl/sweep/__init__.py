"""Sweeps: a grid over any settings, one run directory per point, run by a launcher (local processes).

- `grid`: the grid from flags or a sweep file (`SweepSpec`), its points (`expand`) and their names;
- `index`: the sweep directory (sweep.json, index.json, configs/, runs/, logs/) and each point's status;
- `run`: `run_sweep` (validate, index, launch what is not finished), launch options;
- `job`: one point's job (train, or resume from the newest checkpoint), the same `train` a user calls;
- `local`: N jobs side by side as processes.
"""

from deepcrl.sweep.grid import Point, SweepSpec, expand, load_sweep_file, spec_from_flags, spec_from_mapping
from deepcrl.sweep.index import SweepIndex, read_sweep, run_status
from deepcrl.sweep.run import LaunchOptions, SweepResult, run_sweep, status_rows

__all__ = [
    "LaunchOptions",
    "Point",
    "SweepIndex",
    "SweepResult",
    "SweepSpec",
    "expand",
    "load_sweep_file",
    "read_sweep",
    "run_status",
    "run_sweep",
    "spec_from_flags",
    "spec_from_mapping",
    "status_rows",
]
