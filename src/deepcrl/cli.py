"""The command line: `deepcrl train [FLAGS]` and `deepcrl eval RUN_DIR`. Nothing imports this module.

Bad input of any kind prints one line, `deepcrl: error: ...`, and exits with code 2; nothing is written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
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


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RULE_CHARS = "─━═-+╭╮╰╯│| "


def _tyro_message(text: str) -> str:
    """tyro's boxed error message (Unicode or ASCII box) reduced to its message (the first paragraph with a colon), on one line.

    The box holds a title ("Value error"), then paragraphs separated by rules: the message ("Error
    parsing --depth: invalid literal ..."), the argument's help text and a pointer to --help.
    """
    paragraphs: list[list[str]] = [[]]
    for raw in text.splitlines():
        line = _ANSI.sub("", raw).strip()
        if line.startswith("╭"):  # top border with the title inside: "╭─ Value error ───╮"
            line = ""
        line = line.strip("│|").strip()
        if line and not line.strip(_RULE_CHARS):
            paragraphs.append([])
        elif line:
            paragraphs[-1].append(line)
    texts = [" ".join(" ".join(p).split()) for p in paragraphs if p]
    for text in texts:  # the title has no colon; the message does ("Error parsing --depth: ...")
        if ":" in text:
            return text
    return texts[0] if texts else "invalid arguments"


def _parse(cls, argv: Sequence[str], **kwargs):
    """tyro.cli, with its (multi-line, boxed) usage errors turned into one-line ConfigErrors."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(cls, args=list(argv), **kwargs)
    except SystemExit as e:
        if e.code in (0, None):
            sys.stderr.write(captured.getvalue())
            raise
    # Parse again with a very wide "terminal", so that the message is not wrapped inside the box.
    wide = io.StringIO()
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100000"
    try:
        with contextlib.redirect_stderr(wide):
            tyro.cli(cls, args=list(argv), **kwargs)
    except SystemExit:
        pass
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    raise ConfigError(_tyro_message(wide.getvalue() or captured.getvalue()))


def _train(argv: Sequence[str]) -> int:
    from deepcrl.config import Config, validate
    from deepcrl.training import train

    config = _parse(Config, argv, prog="deepcrl train", description="Train a Contrastive RL agent.")
    validate(config)
    train(config)
    return 0


def _eval(argv: Sequence[str]) -> int:
    import jax
    from rich.console import Console
    from rich.table import Table

    from deepcrl.checkpoint import load_checkpoint
    from deepcrl.evaluate import make_evaluate

    args = _parse(EvalArgs, argv, prog="deepcrl eval", description="Evaluate a trained run's checkpoint.")
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
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if not argv:
        return _fail("missing command; choose one of: train, eval (deepcrl --help shows the usage)")
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
