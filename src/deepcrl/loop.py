"""The host loop of a training run: `train(config)` and `resume(run_dir)`.

    result = train(config)            # validate, check the run directory, train, write logs and checkpoints
    result = resume(run_dir)          # go on from the newest training-state checkpoint, exactly

Between jitted epochs (programs.py) the loop checks numerical health (health.py), evaluates on the
evaluation epochs and writes a metrics.csv row (metrics.py, logger.py), updates the progress bar,
saves training-state checkpoints every `checkpoint_every` epochs, and stops cleanly on SIGINT /
SIGTERM with a checkpoint to resume from. At the end it writes the policy checkpoint.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from deepcrl import parallel
from deepcrl.build import Setup, prepare
from deepcrl.checkpoints import TrainStateWriter, list_train_states, restore_train_state, save_policy_checkpoint
from deepcrl.config import Config
from deepcrl.config_files import load_config_file
from deepcrl.errors import ConfigError
from deepcrl.health import raise_if_unhealthy
from deepcrl.logger import MetricsLogger, check_wandb, open_wandb_run, read_metrics, truncate_metrics
from deepcrl.metrics import final_score, metric_columns
from deepcrl.programs import Trainer, TrainState, run_keys
from deepcrl.progress import RunProgress
from deepcrl.run_dir import check_disk_space, prepare_run_dir

# Config fields a resumed run may change (where its logs go, not what it computes)
RESUME_MAY_CHANGE = ("progress", "tensorboard", "wandb", "wandb_project", "wandb_group", "wandb_name", "wandb_mode")
LEARNER_DIR = "learner"  # --learner-depth: RUN_DIR/learner/checkpoint holds the learner's policy


@dataclass
class RunResult:
    run_dir: Path  # where config.json, metrics.csv, tensorboard/, checkpoint/ and state/ were written
    metrics: dict[str, float]  # the last evaluation (and training metrics of its epoch)
    final_score: dict[str, float]  # eval metrics averaged over the last 5 evaluations
    history: list[dict[str, float]]  # every row written to metrics.csv
    interrupted: bool = False  # stopped early by SIGINT / SIGTERM; resume with deepcrl train --resume


def train(config: Config | Setup, console: Any = None) -> RunResult:
    """Train one agent end to end; returns the final metrics and the run directory.

    `config`: a Config (validated here) or the `build.Setup` of one (already validated, its task built).
    Nothing is written before the whole config has been validated and the run directory checked.
    """
    setup = prepare(config)
    check_wandb(setup.config)
    config, run_dir = prepare_run_dir(setup.config)
    trainer = Trainer(dataclasses.replace(setup, config=config))
    check_disk_space(config, trainer.state_shapes(), run_dir)
    parallel.sync_processes("deepcrl: run directory checked")  # before process 0 writes into it
    if parallel.is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(config.to_json())
    init_key, _ = run_keys(config)
    return _run(trainer, run_dir, trainer.init(init_key), history=[], console=console)


def resume(run_dir: str | Path, config: Config | None = None, console: Any = None) -> RunResult:
    """Continue a run from its newest training-state checkpoint, exactly as if it had never stopped.

    `config`, if given, must equal the stored one except for `progress` and `tensorboard`; any other
    difference would change the run and raises ConfigError naming the field.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"--resume {str(run_dir)!r}: no config.json there; give the folder of a run started by deepcrl train")
    stored = load_config_file(run_dir / "config.json")
    if config is not None:
        changed = [
            f.name
            for f in dataclasses.fields(Config)
            if f.name not in RESUME_MAY_CHANGE and getattr(config, f.name) != getattr(stored, f.name)
        ]
        if changed:
            name = changed[0]
            raise ConfigError(
                f"--resume: {name}={getattr(config, name)!r} contradicts the run's stored {name}={getattr(stored, name)!r}; "
                f"a resumed run keeps its settings (only {', '.join(RESUME_MAY_CHANGE)} may change)"
            )
        stored = dataclasses.replace(stored, **{k: getattr(config, k) for k in RESUME_MAY_CHANGE})
    setup = prepare(stored)
    check_wandb(stored)
    checkpoints = list_train_states(run_dir)
    if not checkpoints:
        raise ConfigError(
            f"--resume {str(run_dir)!r}: no training-state checkpoint in {str(run_dir / 'state')!r} (set --checkpoint-every to save them)"
        )
    trainer = Trainer(setup)
    state, buffer_restored = restore_train_state(checkpoints[-1], trainer.state_shapes())
    state = trainer.place(state)
    if not buffer_restored:
        state = trainer.refill(state)
    history = truncate_metrics(run_dir, epochs_done(state)) if parallel.is_main_process() else []
    parallel.sync_processes("deepcrl: metrics truncated")
    if not parallel.is_main_process() and (run_dir / "metrics.csv").exists():
        history = read_metrics(run_dir)
    return _run(trainer, run_dir, state, history=history, console=console)


def epochs_done(state: TrainState) -> int:
    """Epochs a state has done (the same for every seed of a --num-seeds run)."""
    return int(np.asarray(parallel.to_host(state.epoch)).max())


def _fold_in(key: jax.Array, data: int, num_seeds: int) -> jax.Array:
    return jax.random.fold_in(key, data) if num_seeds == 1 else jax.vmap(lambda k: jax.random.fold_in(k, data))(key)


class _StopSignals:
    """SIGINT / SIGTERM ask the loop to stop after the current epoch (a second Ctrl-C stops at once)."""

    def __init__(self):
        self.signal: str | None = None
        self._handlers = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._handlers[sig] = signal.signal(sig, self._request)
        return self

    def _request(self, signum, _frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once, without a checkpoint
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._handlers.items():
            signal.signal(sig, handler)
        return False


def _run(trainer: Trainer, run_dir: Path, state: TrainState, history: list[dict[str, float]], console: Any) -> RunResult:
    """The host loop from `state` to the last epoch: log, checkpoint, stop cleanly on SIGINT / SIGTERM."""
    config = trainer.config
    _, eval_key = run_keys(config)
    eval_epochs = set(config.eval_epochs)
    first_epoch = epochs_done(state) + 1
    elapsed_before = history[-1]["time_s"] if history else 0.0
    start = time.perf_counter()

    # training stops for a checkpoint only while the state is copied to host memory; the write goes on beside the next epochs
    writer = TrainStateWriter(run_dir, keep=config.keep_checkpoints, save_buffer=config.save_buffer)

    def saved_checkpoints() -> list[Path]:
        writer.settle()
        return list_train_states(run_dir)

    main_process = parallel.is_main_process()  # the only one writing logs (all take part in computing)
    wandb_run = open_wandb_run(run_dir, config) if config.wandb and main_process else None
    logger = MetricsLogger(run_dir, tensorboard=config.tensorboard, wandb_run=wandb_run) if main_process else None
    progress = RunProgress(
        config, trainer.agent, console=console, enabled=config.progress and main_process, episode_length=trainer.env.episode_length
    )
    interrupted = False
    with _StopSignals() as stop:
        try:
            with progress:
                last_row = history[-1] if history else {}
                progress.update((first_epoch - 1) * config.env_steps_per_epoch, last_row)
                for epoch in range(first_epoch, config.num_epochs + 1):
                    state, train_metrics = trainer.epoch(state)
                    raise_if_unhealthy(
                        epoch=epoch,
                        updates_per_epoch=config.updates_per_epoch,
                        first_seed=config.seed,
                        num_seeds=config.num_seeds,
                        names=trainer.watched_names,
                        first_bad_step=train_metrics.pop("health/first_bad_step"),
                        bad_quantity=train_metrics.pop("health/bad_quantity"),
                        checkpoints=saved_checkpoints,
                    )
                    if epoch in eval_epochs:
                        eval_metrics = trainer.evaluate(state, _fold_in(eval_key, epoch, config.num_seeds))
                        train_metrics, eval_metrics = parallel.to_host((train_metrics, eval_metrics))
                        env_steps = epoch * config.env_steps_per_epoch
                        row = {
                            "epoch": epoch,
                            "env_steps": env_steps,
                            "sgd_steps": epoch * config.updates_per_epoch,
                            "time_s": round(elapsed_before + time.perf_counter() - start, 3),
                            **metric_columns(eval_metrics, config.seed, config.num_seeds),
                            **metric_columns(train_metrics, config.seed, config.num_seeds),
                        }
                        if logger is not None:
                            logger.log(row, step=env_steps)
                        history.append(row)
                        last_row = row
                    progress.update(epoch * config.env_steps_per_epoch, last_row)
                    if config.checkpoint_every and epoch % config.checkpoint_every == 0 and epoch < config.num_epochs:
                        writer.save(state)
                    if stop.signal is not None and epoch < config.num_epochs:
                        where = writer.save(state)
                        interrupted = True
                        break
            if not interrupted:
                jax.block_until_ready(state)
                if config.checkpoint_every:
                    writer.save(state)
            writer.wait()
            if not interrupted:
                save_policy_checkpoint(run_dir, config, state.agent)
                if trainer.learner_agent is not None:  # the learner's policy, for deepcrl eval / qmap RUN_DIR/learner
                    (run_dir / LEARNER_DIR).mkdir(exist_ok=True)
                    save_policy_checkpoint(run_dir / LEARNER_DIR, trainer.learner_setup.config, state.learner)
        finally:
            writer.close()  # a run failing for another reason still finishes the write in flight
            if logger is not None:
                logger.close()

    if interrupted:
        # Plain print, not rich: a wrapped path could not be copied into the resume command.
        print(f"{stop.signal}: stopped after epoch {epochs_done(state)} of {config.num_epochs}; checkpoint {where}", file=sys.stderr)
        print(f"resume with: deepcrl train --resume {run_dir}", file=sys.stderr)
    final = final_score(history) if history else {}
    result = RunResult(run_dir=run_dir, metrics=history[-1] if history else {}, final_score=final, history=history, interrupted=interrupted)
    if not interrupted and main_process:
        progress.summary(result, elapsed_before + time.perf_counter() - start)
    return result
