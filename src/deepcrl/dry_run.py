"""`deepcrl train --dry-run`: what a config would do, without training or writing anything.

    plan = plan_run(config)    # validates, then derives sizes from abstract shapes (nothing is allocated)
    print_plan(plan)

Sizes come from the code that a run uses, evaluated on shapes only: the replay buffer from
`jax.eval_shape(replay.init_buffer)`, the parameter counts from `jax.eval_shape(agent.init)` (and
checked against the closed form `networks.param_count`).

FLOPs per SGD update are counted analytically (not by XLA, whose cost analysis counts a scanned
block once and whose compile of a deep unrolled update takes minutes on a small CPU). Only the Dense
layers and the B x B logit matrix are counted, at 2 x batch x in x out per Dense forward; an update
makes these passes over the batch (see agents/crl.py, CRL.update):

    actor loss:  actor forward + backward (3x), phi forward + backward to its input only (2x:
                 the critic's weights get no gradient here), psi forward (1x)
    critic loss: phi and psi forward + backward (3x each), logits B x B x repr_dim forward + backward (3x)

LayerNorm, activations and Adam are left out; for width 256 the estimate is within about 5% of XLA's
count for a fully unrolled update (tests/test_config_files.py checks this).

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
from deepcrl.config import Config, validate
from deepcrl.networks import count_params, param_count


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


def dense_forward_flops(batch: int, width: int, depth: int, in_size: int, out_size: int) -> int:
    """2 x batch x in x out summed over a ResidualMLP's Dense layers (input, depth block layers, head)."""
    return 2 * batch * (in_size * width + depth * width * width + width * out_size)


def update_flops(config: Config, state_size: int, goal_size: int, action_size: int) -> int:
    """Analytic FLOPs of one SGD update (actor, alpha and critic), as described in the module docstring."""
    c = config
    b, aw, ad = c.batch_size, c.resolved_actor_width, c.resolved_actor_depth
    cw, cd = c.resolved_critic_width, c.resolved_critic_depth
    actor = dense_forward_flops(b, aw, ad, state_size + goal_size, 2 * action_size)
    phi = dense_forward_flops(b, cw, cd, state_size + action_size, c.repr_dim)
    psi = dense_forward_flops(b, cw, cd, goal_size, c.repr_dim)
    logits = 2 * b * b * c.repr_dim
    return 3 * actor + 5 * phi + 4 * psi + 3 * logits


def closed_form_params(config: Config, state_size: int, goal_size: int, action_size: int) -> dict[str, int]:
    """Parameter counts of the agent's networks from networks.param_count (a check on the built ones)."""
    c, s, g, a, ln = config, state_size, goal_size, action_size, config.layer_norm
    aw, ad, cw, cd = c.resolved_actor_width, c.resolved_actor_depth, c.resolved_critic_width, c.resolved_critic_depth
    if c.agent == "crl":
        return {"actor": param_count(aw, ad, s + g, 2 * a, ln), "phi": param_count(cw, cd, s + a, c.repr_dim, ln),
                "psi": param_count(cw, cd, g, c.repr_dim, ln)}
    if c.agent == "gcbc":
        return {"actor": param_count(aw, ad, s + g, 2 * a, ln)}
    actor_out = 2 * a if c.agent == "sac" else a  # td3's actor is deterministic: one head
    return {"actor": param_count(aw, ad, s + g, actor_out, ln), "q (x2)": 2 * param_count(cw, cd, s + a + g, 1, ln)}


def _nbytes(tree: Any) -> int:
    return int(sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree_util.tree_leaves(tree)))


def plan_run(config: Config) -> RunPlan:
    """Validate `config` (ConfigError on the first bad value) and derive its sizes without allocating."""
    from deepcrl.training import build_agent

    validate(config)
    c = config
    env, agent = build_agent(c)
    s, g, a = env.state_size, env.goal_size, env.action_size

    buffer = jax.eval_shape(functools.partial(replay.init_buffer, c.buffer_size, c.num_envs, s, a, g, td=agent.data == "td"))
    shapes = jax.eval_shape(agent.init, jax.random.PRNGKey(0))
    params = {name: count_params(tree) for name, tree in agent.param_groups(shapes).items()}
    closed_form = closed_form_params(c, s, g, a)
    if params != closed_form:  # a bug in the networks, not in the user's input
        raise RuntimeError(f"parameter counts of the built networks {params} differ from networks.param_count {closed_form}")
    visible = jax.device_count()
    num_devices = c.num_devices or visible
    crl = c.agent == "crl"  # the FLOP and memory models describe CRL's update
    memory = estimate.estimate_memory(c, s, g, a, num_devices=num_devices) if crl else None

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
        flops_per_update=update_flops(c, s, g, a) if crl else None,
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
        ("agent", c.agent + (" + HER" if c.her else "")),
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
        ("per device", f"{m.envs_per_device:,} envs, {m.batch_rows_per_device:,} batch rows per update"
                       f" (logits {m.batch_rows_per_device:,} x {config.batch_size:,})"),
        ("buffer memory per device", fb(m.buffer_bytes)),
        ("params + optimizer per device", f"{fb(m.state_bytes)} (params {fb(m.param_bytes)}, Adam {fb(m.optimizer_bytes)}; replicated)"),
        ("gradients per update", fb(m.gradient_bytes)),
        ("activations per update", f"{fb(m.activation_bytes)} (remat {'on' if m.remat else 'off'}; "
                                   f"with remat {other}: {fb(m.activation_bytes_other_remat)}{same})"),
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
