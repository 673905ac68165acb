"""The command line: `deepcrl train [FLAGS]` and `deepcrl eval RUN_DIR`. Nothing imports this module.

Bad input of any kind prints one line, `deepcrl: error: ...`, and exits with code 2; nothing is written.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Sequence

import tyro

from deepcrl.errors import ConfigError

USAGE = """usage: deepcrl {train,eval} ...

  deepcrl train [FLAGS]      train an agent (deepcrl train --help lists every flag)
  deepcrl eval RUN_DIR       evaluate the checkpoint of a finished run
"""


@dataclass(frozen=True)
class EvalArgs:
    run_dir: tyro.conf.Positional[str]  # a run directory written by `deepcrl train`
    num_envs: int = 128  # evaluation episodes
    seed: int = 0  # PRNG seed of the evaluation
    json: bool = False  # print the metrics as JSON instead of a table


def _fail(message: str) -> int:
    print(f"deepcrl: error: {message}", file=sys.stderr)
    return 2


def _train(argv: Sequence[str]) -> int:
    from deepcrl.config import Config, validate
    from deepcrl.train import train

    config = tyro.cli(Config, args=list(argv), prog="deepcrl train", description="Train a Contrastive RL agent.")
    validate(config)
    train(config)
    return 0


def _eval(argv: Sequence[str]) -> int:
    import jax
    from rich.console import Console
    from rich.table import Table

    from deepcrl.checkpoint import load_checkpoint
    from deepcrl.evaluate import make_evaluate

    args = tyro.cli(EvalArgs, args=list(argv), prog="deepcrl eval", description="Evaluate a trained run's checkpoint.")
    if args.num_envs <= 0:
        raise ConfigError(f"num_envs={args.num_envs} is not allowed; it must be a positive integer")
    config, env, agent, payload = load_checkpoint(args.run_dir)
    actor_params = payload["actor_params"]
    evaluate = make_evaluate(env, args.num_envs)
    run = jax.jit(lambda key: evaluate(lambda obs: agent.act(actor_params, obs, deterministic=True), key))
    metrics = jax.device_get(run(jax.random.PRNGKey(args.seed)))
    metrics = {k: float(v) for k, v in metrics.items()}
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    table = Table(title=f"{args.run_dir}: {config.env}{'' if config.layout is None else ' ' + config.layout}, {args.num_envs} episodes")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.3f}")
    Console().print(table)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    commands = {"train": _train, "eval": _eval}
    if command not in commands:
        return _fail(f"unknown command {command!r}; choose one of: {', '.join(commands)}")
    try:
        return commands[command](rest)
    except ConfigError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        print("deepcrl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
