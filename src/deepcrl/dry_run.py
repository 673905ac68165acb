"""`deepcrl train --dry-run`: what a config would do, without training or writing anything.

    plan = plan_run(config)    # validates, then derives sizes from abstract shapes (nothing is allocated)
    print_plan(plan)

Sizes come from the code that a run uses, evaluated on shapes only: the replay buffer from
`jax.eval_shape(replay.init_buffer)`, the parameter counts from `jax.eval_shape(agent.init)`.

FLOPs per SGD update and memory per device come from the agent's `cost_model` (agents/base.py): for
CRL, the analytic models of `deepcrl.estimate` (FLOPs of the Dense layers and the logits; parameters
and Adam state, gradients, replay buffer and activations). Other agents are not modelled.

Memory per device comes from `deepcrl.estimate` (analytic, see its docstring): parameters and Adam
state (replicated on every device), gradients, this device's replay-buffer columns and the activations
of one SGD update on its batch_size / D rows, all times num_seeds; the activations are also shown with
the other --remat setting. The device count is --num-devices, or the devices JAX sees for 0 (asking JAX
for its device list compiles nothing).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax

from deepcrl import estimate, replay
from deepcrl.agents import get_agent
from deepcrl.build import Setup, prepare
from deepcrl.config import Config
from deepcrl.networks import count_params


@dataclasses.dataclass(frozen=True)
class RunPlan:
    env: str  # the task's name, e.g. point_u_maze
    state_size: int
    goal_size: int
    action_size: int
    num_epochs: int
    env_steps_per_epoch: int
    env_steps_total: int  # num_epochs x env_steps_per_epoch (total_env_steps rounded up to whole epochs)
    prefill_env_steps: int  # num_envs x prefill_steps, collected before the first update (not counted above)
    sgd_steps_per_epoch: int
    sgd_steps_total: int
    env_steps_per_sgd_step: float  # update-to-data ratio 1 : this
    num_evals: int
    buffer_transitions: int  # buffer_size x num_envs
    buffer_bytes: int  # bytes of the buffer's arrays
    params: dict[str, int]  # actor, phi, psi
    flops_per_update: int | None  # analytic estimate (module docstring); CRL only
    num_devices: int = 1  # devices the run splits environments and batch rows over
    num_seeds: int = 1  # independent seeds trained side by side
    visible_devices: int = 1  # devices JAX sees on this machine (the plan may be for more)
    memory: estimate.MemoryEstimate | None = None  # bytes per device (deepcrl.estimate)

    @property
    def flops_total(self) -> int | None:
        return None if self.flops_per_update is None else self.flops_per_update * self.sgd_steps_total


def _nbytes(tree: Any) -> int:
    return int(sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree)))


def plan_run(config: Config | Setup) -> RunPlan:
    """Validate `config` (ConfigError on the first bad value; a `build.Setup` is already validated) and
    derive its sizes without allocating."""
    setup = prepare(config)
    c, env = setup.config, setup.task
    agent = setup.build_agent()
    s, g, a = env.state_size, env.goal_size, env.action_size

    buffer = jax.eval_shape(functools.partial(replay.init_buffer, c.buffer_size, c.num_envs, s, a, g, td=agent.data == "td"))
    shapes = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    params = {name: count_params(tree) for name, tree in agent.param_groups(shapes).items()}
    visible = jax.device_count()
    num_devices = c.num_devices or visible
    flops, memory = agent.cost_model(c, num_devices) or (None, None)

    return RunPlan(
        env=env.name,
        state_size=s,
        goal_size=g,
        action_size=a,
        num_epochs=c.num_epochs,
        env_steps_per_epoch=c.env_steps_per_epoch,
        env_steps_total=c.num_epochs * c.env_steps_per_epoch,
        prefill_env_steps=c.num_envs * c.prefill_steps,
        sgd_steps_per_epoch=c.updates_per_epoch,
        sgd_steps_total=c.num_epochs * c.updates_per_epoch,
        env_steps_per_sgd_step=c.env_steps_per_epoch / c.updates_per_epoch,
        num_evals=min(c.num_evals, c.num_epochs),  # = len(c.eval_epochs), without listing them
        buffer_transitions=buffer.capacity * buffer.num_envs,
        buffer_bytes=_nbytes(buffer),
        params=params,
        flops_per_update=flops,
        num_devices=num_devices,
        num_seeds=c.num_seeds,
        visible_devices=visible,
        memory=memory,
    )


def _ratio(x: float) -> str:
    return f"1:{x:,.0f}" if float(x).is_integer() else f"1:{x:,.4g}"


def plan_rows(plan: RunPlan, config: Config) -> list[tuple[str, str]]:
    """(label, value) rows of the dry-run report, numbers with thousands separators."""
    p, c = plan, config
    rows = [
        ("env", p.env if c.layout is None or not c.layout.startswith("maze:") else f"{p.env} ({c.layout})"),
        ("state / goal / action sizes", f"{p.state_size} / {p.goal_size} / {p.action_size}"),
        ("policy input size", f"{p.state_size + p.goal_size}"),
        ("epochs", f"{p.num_epochs:,}"),
        ("env steps per epoch", f"{p.env_steps_per_epoch:,} ({c.num_envs:,} envs x {c.unroll_length:,} steps)"),
        ("env steps total", f"{p.env_steps_total:,} (+ {p.prefill_env_steps:,} prefill)"),
        ("sgd steps per epoch", f"{p.sgd_steps_per_epoch:,}"),
        ("sgd steps total", f"{p.sgd_steps_total:,}"),
        ("update-to-data ratio", f"{_ratio(p.env_steps_per_sgd_step)} (SGD steps : env steps)"),
        ("evaluations", f"{p.num_evals:,} x {c.num_eval_envs:,} episodes"),
        ("buffer capacity", f"{p.buffer_transitions:,} transitions ({c.buffer_size:,} steps x {c.num_envs:,} envs)"),
        ("buffer memory", f"{p.buffer_bytes / 1e6:,.2f} MB"),
        ("agent", get_agent(c.agent).label(c)),
    ]
    for name, count in p.params.items():
        which = "actor" if name == "actor" else "critic"
        depth, width = getattr(c, f"resolved_{which}_depth"), getattr(c, f"resolved_{which}_width")
        rows.append((f"params {name}", f"{count:,} (depth {depth}, width {width})"))
    rows.append(("params total", f"{sum(p.params.values()):,}"))
    if p.flops_per_update is not None:
        rows += [
            ("flops per sgd update", f"{p.flops_per_update:.3g} (analytic: Dense layers and logits, forward + backward)"),
            ("flops of all updates", f"{p.flops_total:.3g}"),
        ]
    if p.memory is not None:
        rows += memory_rows(p, c)
    else:
        rows.append(("flops and memory", f"estimated for --agent crl only (--agent {c.agent}: not modelled)"))
    return rows


def memory_rows(plan: RunPlan, config: Config) -> list[tuple[str, str]]:
    """The per-device memory rows of the dry-run report (deepcrl.estimate)."""
    p, m, fb = plan, plan.memory, estimate.format_bytes
    seeds = f" x {p.num_seeds:,} seeds" if p.num_seeds > 1 else ""
    where = "all visible" if config.num_devices == 0 else f"--num-devices {config.num_devices}"
    note = f"; JAX sees {p.visible_devices} here" if p.num_devices != p.visible_devices else ""
    other = "off" if m.remat else "on"
    same = "; no saving: unrolled networks" if m.activation_bytes == m.activation_bytes_other_remat else ""
    return [
        ("devices / seeds", f"{p.num_devices:,} ({where}{note}) / {p.num_seeds:,}"),
        (
            "per device",
            f"{m.envs_per_device:,} envs, {m.batch_rows_per_device:,} batch rows per update"
            f" (logits {m.batch_rows_per_device:,} x {config.batch_size:,})",
        ),
        ("buffer memory per device", fb(m.buffer_bytes)),
        ("params + optimizer per device", f"{fb(m.state_bytes)} (params {fb(m.param_bytes)}, Adam {fb(m.optimizer_bytes)}; replicated)"),
        ("gradients per update", fb(m.gradient_bytes)),
        (
            "activations per update",
            f"{fb(m.activation_bytes)} (remat {'on' if m.remat else 'off'}; "
            f"with remat {other}: {fb(m.activation_bytes_other_remat)}{same})",
        ),
        ("memory per device (estimate)", f"{fb(m.total_bytes)} (buffer + params + Adam + gradients + activations{seeds})"),
    ]


def print_plan(plan: RunPlan, config: Config, run_dir: str | None = None, console: Any = None) -> None:
    """The dry-run report as a two-column table on stdout."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="deepcrl train --dry-run: nothing trained, nothing written", title_justify="left")
    table.add_column("quantity")
    table.add_column("value", overflow="fold")
    for label, value in plan_rows(plan, config):
        table.add_row(label, value)
    console = console or Console(width=120)
    console.print(table)
    if run_dir is not None:  # outside the table, so that a long path is never folded
        console.print(f"run dir (not created): {run_dir}", markup=False, highlight=False, soft_wrap=True)
