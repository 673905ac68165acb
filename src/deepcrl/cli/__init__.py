"""The command line: `deepcrl train [FLAGS]`, `deepcrl eval RUN_DIR`, `deepcrl render RUN_DIR`,
`deepcrl --version`. Thin: each command parses its flags (tyro), validates once at the boundary and
calls the library. No other module of deepcrl imports this one.

Bad input of any kind prints one line, `deepcrl: error: ...`, and exits with code 2; nothing is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Iterable, Sequence

import tyro

from deepcrl.errors import ConfigError, RunError

USAGE = """usage: deepcrl {train,eval,render,sweep,plot,qmap} ... | deepcrl --version

  deepcrl train [FLAGS]      train an agent (deepcrl train --help lists every flag)
  deepcrl train --config FILE [FLAGS]   settings from a YAML or JSON file, flags override it
  deepcrl train --preset NAME [FLAGS]   start from a preset: paper (the paper's settings, GPU) or smoke (a CPU check)
  deepcrl train --dry-run [FLAGS]       check the settings and print the derived sizes; writes nothing
  deepcrl train --resume RUN_DIR        continue an interrupted or crashed run from its newest checkpoint
  deepcrl eval RUN_DIR       evaluate the checkpoint of a finished run
  deepcrl render RUN_DIR     videos (MP4, GIF) of the policy's evaluation episodes (deepcrl render --help)
  deepcrl sweep [FLAGS]      a grid of runs: --depth 4,16 --seed 0,1,2 (deepcrl sweep --help); --status DIR
  deepcrl plot SWEEP_OR_RUNS... --out DIR [--paper TASK]   learning curves, scaling plots, heatmaps (PNG, SVG)
  deepcrl qmap RUN_DIR [--goal X,Y] [--out FILE.png]   the critic's value over the maze, and its topology score
"""


@dataclass(frozen=True)
class EvalArgs:
    run_dir: tyro.conf.Positional[str]  # a run directory written by `deepcrl train`
    num_envs: int = 128  # evaluation episodes
    seed: int = 0  # PRNG seed of the evaluation
    json: bool = False  # print the metrics as JSON instead of a table


@dataclass(frozen=True)
class RenderArgs:
    run_dir: tyro.conf.Positional[str]  # a run directory written by `deepcrl train`
    episodes: int = 2  # evaluation episodes, shown one after another
    seed: int = 0  # PRNG seed of the episodes (starts and goals)
    run_seed: int | None = None  # which seed of a --num-seeds run plays (None: the run's first)
    max_steps: int | None = None  # steps per episode (None: the whole episode)
    width: int = 480  # frame width in pixels (even)
    height: int = 480  # frame height in pixels (even)
    fps: int = 30  # frames per second of the MP4 (the GIF keeps at most 15)
    format: str = "both"  # mp4, gif or both
    out: str | None = None  # path of the videos without suffix, PATH.mp4 and PATH.gif (None: RUN_DIR/videos/eval)
    camera: str | None = (
        None  # MuJoCo tasks: a camera of the model, or free (None: free for ant and humanoid, else the model's first camera)
    )


RENDER_DESCRIPTION = (
    "Render videos of a trained run's evaluation episodes (deterministic policy, far goals) as MP4 (H.264) "
    "and GIF. MuJoCo tasks need an OpenGL backend without a display: MUJOCO_GL=egl or osmesa, chosen "
    "automatically when unset (docs/rendering.md)."
)


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


# `name=value` in an error message, for a setting called `name`: a quoted string, or a token up to a
# space, a semicolon, a comma or a closing parenthesis.
_SETTING = re.compile(r"(?<![\w./-])([a-z][a-z0-9_]*)=('(?:[^'\\]|\\.)*'|[^\s;,)]+)")


def in_flag_words(message: str, names: Iterable[str], keep: Iterable[str] = ()) -> str:
    """A ConfigError message in the words of the command line: `name=value` of each setting in `names`
    becomes `--name-with-dashes value` (a boolean: `--name` / `--no-name`), except the settings in
    `keep` (given in a config file, where the user wrote them as `name: value`)."""
    names, keep = set(names) - set(keep), set(keep)

    def flag(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if name not in names:
            return match.group(0)
        dashed = name.replace("_", "-")
        if value in ("True", "False"):
            return f"--{dashed}" if value == "True" else f"--no-{dashed}"
        return f"--{dashed} {value}"

    if message.startswith("config file "):
        return message
    return _SETTING.sub(flag, message)


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


TRAIN_DESCRIPTION = (
    "Train a Contrastive RL agent. More flags: --config FILE reads settings from a YAML (.yaml, .yml) "
    "or JSON (.json) file holding a flat mapping of the names below (depth: 16); flags given on the "
    "command line override it. --preset NAME starts from a named preset (paper: the paper's settings "
    "for a GPU; smoke: a few-minute CPU check); --config and flags override it. --dry-run checks the settings, prints the derived sizes (epochs, SGD "
    "steps, buffer memory, parameters, FLOPs) and exits without training or writing anything."
)


# Options of `deepcrl train` that are not Config fields, and what each needs as its value.
_EXTRA_OPTIONS = {
    "--config": "a file: --config FILE, FILE a .yaml, .yml or .json file (flags override its values)",
    "--resume": "a run directory: --resume RUN_DIR",
    "--preset": "a preset name: --preset NAME, NAME one of paper, smoke (deepcrl/presets.py; --config and flags override it)",
}


def _split_train_argv(argv: Sequence[str]) -> tuple[dict[str, str], bool, list[str]]:
    """({--config/--resume/--preset: value}, --dry-run, the other arguments): the flags that are not Config fields."""
    values: dict[str, str] = {}
    dry_run = False
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        flag = arg.split("=", 1)[0]
        if arg == "--":  # everything after "--" is tyro's
            rest += args[i:]
            break
        if arg == "--dry-run":
            dry_run = True
        elif flag in _EXTRA_OPTIONS:
            if flag in values:
                raise ConfigError(f"{flag} is given twice; it takes {_EXTRA_OPTIONS[flag]}")
            if "=" in arg:
                value = arg.split("=", 1)[1]
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                i += 1
                value = args[i]
            else:
                value = ""
            if not value:
                raise ConfigError(f"{flag} needs {_EXTRA_OPTIONS[flag]}")
            values[flag] = value
        else:
            rest.append(arg)
        i += 1
    return values, dry_run, rest


def _train(argv: Sequence[str]) -> int:
    from deepcrl.config import Config

    keep: set[str] = set()  # settings a --config file or --preset gave, and the command line did not
    try:
        return _train_or_resume(argv, keep)
    except ConfigError as e:
        raise ConfigError(in_flag_words(str(e), _field_names(Config), keep)) from None


def _train_or_resume(argv: Sequence[str], keep: set[str]) -> int:
    from deepcrl.build import prepare
    from deepcrl.config import Config
    from deepcrl.config_files import load_config_file, preset_config

    extra, dry_run, rest = _split_train_argv(argv)
    config_path, resume_dir, preset = extra.get("--config"), extra.get("--resume"), extra.get("--preset")
    if resume_dir is not None:
        if preset is not None:
            raise ConfigError("--preset cannot be combined with --resume; a resumed run keeps its stored settings")
        keep.update(_field_names(Config))  # a resumed run's settings come from its stored config.json
        return _resume(resume_dir, config_path, dry_run, rest)
    defaults = None if preset is None else preset_config(preset)
    if config_path is not None:
        defaults = load_config_file(config_path, base=defaults)
    kwargs = {} if defaults is None else {"default": defaults}
    config = _parse(Config, rest, prog="deepcrl train", description=TRAIN_DESCRIPTION, **kwargs)
    if defaults is not None:
        typed = {arg[2:].split("=", 1)[0].replace("-", "_").removeprefix("no_") for arg in rest if arg.startswith("--")}
        keep.update(name for name in _field_names(Config) if getattr(defaults, name) != getattr(Config(), name) and name not in typed)
    setup = prepare(config)  # validated once, the task built once: the run below takes both
    if dry_run:
        from deepcrl.dry_run import plan_run, print_plan
        from deepcrl.run_dir import prepare_run_dir

        plan = plan_run(setup)
        _, run_dir = prepare_run_dir(config)  # checks the folder a run would write, creates nothing
        print_plan(plan, config, run_dir=str(run_dir))
        return 0

    from deepcrl.loop import train

    train(setup)
    return 0


def _resume(run_dir: str, config_path: str | None, dry_run: bool, rest: list[str]) -> int:
    """deepcrl train --resume RUN_DIR [FLAGS]: flags may only repeat the stored settings (or --no-progress)."""
    from pathlib import Path

    from deepcrl.config import Config
    from deepcrl.config_files import load_config_file
    from deepcrl.loop import resume

    if dry_run:
        raise ConfigError("--dry-run cannot be combined with --resume; run deepcrl train --dry-run --config RUN_DIR/config.json instead")
    stored_path = Path(run_dir) / "config.json"
    if not stored_path.is_file():
        raise ConfigError(f"--resume {run_dir!r}: no config.json there; give the folder of a run started by deepcrl train")
    defaults = load_config_file(config_path if config_path is not None else stored_path)
    config = _parse(Config, rest, prog="deepcrl train", description=TRAIN_DESCRIPTION, default=defaults)
    resume(run_dir, config)
    return 0


def _eval(argv: Sequence[str]) -> int:
    import jax
    from rich.console import Console
    from rich.table import Table

    from deepcrl.checkpoints import load_policy_checkpoint
    from deepcrl.evaluate import evaluation_policy, make_evaluate
    from deepcrl.metrics import metric_columns

    args = _parse(EvalArgs, argv, prog="deepcrl eval", description="Evaluate a trained run's checkpoint.")
    if args.num_envs <= 0:
        raise ConfigError(f"num_envs={args.num_envs} is not allowed; it must be a positive integer")
    config, env, agent, payload = load_policy_checkpoint(args.run_dir)
    samples = config.eval_action_samples  # evaluate the way the run evaluated (deterministic by default)
    evaluate = make_evaluate(env, args.num_envs, policy_takes_key=samples > 0)

    def run(params, key):
        return evaluate(evaluation_policy(agent, params, samples), key)

    if config.num_seeds > 1:  # every seed of the run on the same episodes: mean, standard error, each seed
        run = jax.vmap(run, in_axes=(0, None))
    metrics = jax.device_get(jax.jit(run)(payload, jax.random.PRNGKey(args.seed)))
    metrics = metric_columns(metrics, config.seed, config.num_seeds)
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


def _render(argv: Sequence[str]) -> int:
    from deepcrl.render import render_run

    args = _parse(RenderArgs, argv, prog="deepcrl render", description=RENDER_DESCRIPTION)
    written, data = render_run(
        args.run_dir,
        episodes=args.episodes,
        seed=args.seed,
        run_seed=args.run_seed,
        max_steps=args.max_steps,
        width=args.width,
        height=args.height,
        fps=args.fps,
        format=args.format,
        out=args.out,
        camera=args.camera,
    )
    episodes, steps = data["drawn"].shape[0], data["drawn"].shape[1] - 1
    reached = int(((data["success"] * data["drawn"]).max(axis=1) > 0).sum())
    print(
        f"rendered {episodes} episode{'s' if episodes != 1 else ''} of up to {steps} steps ({written[0].frames} frames, "
        f"{written[0].width}x{written[0].height}; the goal was reached in {reached} of {episodes})"
    )
    for w in written:
        print(f"wrote {w.path} ({w.bytes / 1e6:.2f} MB)")
    return 0


def _sweep(argv: Sequence[str]) -> int:
    from deepcrl.cli.sweep import sweep_command
    from deepcrl.config import Config
    from deepcrl.sweep.run import LAUNCH_FLAG_NAMES

    try:
        return sweep_command(argv)
    except ConfigError as e:
        raise ConfigError(in_flag_words(str(e), [*_field_names(Config), *LAUNCH_FLAG_NAMES])) from None


def _plot(argv: Sequence[str]) -> int:
    from deepcrl.cli.plot import plot_command

    return plot_command(argv, _parse)


def _qmap(argv: Sequence[str]) -> int:
    from deepcrl.cli.plot import qmap_command

    return qmap_command(argv, _parse)


COMMANDS = ("train", "eval", "render", "sweep", "plot", "qmap")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv and argv[0] in ("-V", "--version"):
        from deepcrl._version import __version__

        print(f"deepcrl {__version__}")
        return 0
    if not argv:
        return _fail(f"missing command; choose one of: {', '.join(COMMANDS)} (deepcrl --help shows the usage)")
    command, rest = argv[0], argv[1:]
    commands = {name: globals()[f"_{name}"] for name in COMMANDS}
    if command not in commands:
        return _fail(f"unknown command {command!r}; choose one of: {', '.join(commands)}")
    if command == "train":
        from deepcrl.parallel import maybe_initialize_distributed

        maybe_initialize_distributed()  # one process of several (JAX_COORDINATOR_ADDRESS set): join before JAX starts
    try:
        return commands[command](rest)
    except ConfigError as e:
        from deepcrl.cli.plot import PlotArgs, QmapArgs

        own_flags = {"eval": EvalArgs, "render": RenderArgs, "plot": PlotArgs, "qmap": QmapArgs}.get(
            command
        )  # train translates its own (_train)
        return _fail(in_flag_words(str(e), _field_names(own_flags)) if own_flags else str(e))
    except RunError as e:
        print(f"deepcrl: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("deepcrl: interrupted", file=sys.stderr)
        return 130
