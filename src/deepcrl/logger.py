"""Where metrics go: metrics.csv (one row per evaluation) and, optionally, TensorBoard events and
Weights & Biases (`--wandb`, the optional extra `pip install -e ".[wandb]"`)."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Appends rows of scalars to `metrics.csv` (fixed columns, set by the first row) and TensorBoard."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True, wandb_run: Any = None):
        self.path = Path(run_dir) / "metrics.csv"
        self.wandb_run = wandb_run  # a wandb Run (open_wandb_run), or None
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
        if self.wandb_run is not None:
            self.wandb_run.log({k: v for k, v in row.items() if isinstance(v, (int, float))}, step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None


WANDB_ID_FILE = "deepcrl_run_id"  # RUN_DIR/wandb/deepcrl_run_id: the W&B run a resumed run goes on with


def check_wandb(config: Any) -> None:
    """ConfigError unless --wandb can log here (the wandb package is installed)."""
    from deepcrl.errors import ConfigError

    if not config.wandb:
        return
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ConfigError(
            'wandb=True needs the wandb package, an optional extra: pip install -e ".[wandb]" (or pip install wandb)'
        ) from None


def wandb_mode(config: Any) -> str:
    """online, offline or disabled: --wandb-mode, else $WANDB_MODE, else online where W&B has an API key."""
    if config.wandb_mode:
        return config.wandb_mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        import netrc

        if netrc.netrc().authenticators("api.wandb.ai"):
            return "online"
    except (OSError, netrc.NetrcParseError):
        pass
    return "offline"


def open_wandb_run(run_dir: str | Path, config: Any):
    """The W&B run of `run_dir` (files under RUN_DIR/wandb), the same one again when the run resumes."""
    import wandb

    run_dir = Path(run_dir)
    folder = run_dir / "wandb"
    folder.mkdir(parents=True, exist_ok=True)
    id_file = folder / WANDB_ID_FILE
    if id_file.is_file():
        run_id = id_file.read_text().strip()
    else:
        import secrets

        run_id = secrets.token_hex(4)  # W&B run ids: letters and digits
        id_file.write_text(run_id + "\n")
    return wandb.init(
        project=config.wandb_project,
        group=config.wandb_group,
        name=config.wandb_name or run_dir.name,
        dir=str(run_dir),
        id=run_id,
        resume="allow",
        mode=wandb_mode(config),
        config=dict(config.__dict__),
        settings=wandb.Settings(silent=True),
    )


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
