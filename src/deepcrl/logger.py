"""Where metrics go: metrics.csv (one row per evaluation) and, optionally, TensorBoard events."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Appends rows of scalars to `metrics.csv` (fixed columns, set by the first row) and TensorBoard."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True):
        self.path = Path(run_dir) / "metrics.csv"
        self.columns: list[str] | None = None
        if self.path.exists():  # a resumed run appends with the columns already there
            with self.path.open(newline="") as f:
                self.columns = next(csv.reader(f), None)
        self.writer = None
        if tensorboard:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:  # optional sink
                self.writer = None
            else:
                self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def log(self, row: dict[str, Any], step: int) -> None:
        row = {k: _scalar(v) for k, v in row.items()}
        new_file = self.columns is None
        if new_file:
            self.columns = list(row)
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        if self.writer is not None:
            for name, value in row.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(name, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _scalar(value: Any) -> Any:
    try:
        return value.item()
    except AttributeError:
        return value


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """The rows of a run's metrics.csv as dicts of floats."""
    with (Path(run_dir) / "metrics.csv").open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def truncate_metrics(run_dir: str | Path, last_epoch: int) -> list[dict[str, float]]:
    """Drop rows after `last_epoch` (written after the checkpoint a run resumes from); return the rest.

    The file is rewritten atomically, so a crash here leaves either the old or the new file.
    """
    path = Path(run_dir) / "metrics.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = [row for row in reader if float(row["epoch"]) <= last_epoch]
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return [{k: float(v) for k, v in row.items()} for row in rows]
