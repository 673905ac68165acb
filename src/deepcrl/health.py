"""Numerical health of a run: which watched quantity first stopped being finite, and the error naming it.

Inside the jitted epoch, `epoch_health` reduces the epoch's per-step metrics and the parameters after
its last step to two integers; between epochs, `raise_if_unhealthy` turns them into a NumericalError
naming the quantity, the SGD step (and the seed) and the last good checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from deepcrl import parallel
from deepcrl.agents.common import all_finite
from deepcrl.errors import NumericalError


def epoch_health(agent: Any, step_metrics: dict[str, jax.Array], agent_state: Any) -> dict[str, jax.Array]:
    """The first SGD step (within the epoch) where a watched quantity stopped being finite, and which.

    `health/first_bad_step` is -1 when everything stayed finite. `health/bad_quantity` indexes
    `watched_names(agent, agent_state)`: the agent's watched metrics, then its parameter groups
    (parameters are checked once, after the epoch's last step).
    """
    bad = jnp.stack([~jnp.isfinite(step_metrics[name]) for name in agent.watched], axis=1)  # [steps, quantities]
    any_bad = jnp.any(bad, axis=1)
    first_step = jnp.argmax(any_bad)
    quantity = jnp.argmax(bad[first_step])
    params_ok = jnp.stack([all_finite(tree) for tree in agent_state.watched_params().values()])
    last_step = any_bad.shape[0] - 1
    step = jnp.where(jnp.any(any_bad), first_step, jnp.where(jnp.all(params_ok), -1, last_step))
    quantity = jnp.where(jnp.any(any_bad), quantity, len(agent.watched) + jnp.argmin(params_ok))
    return {"health/first_bad_step": step.astype(jnp.int32), "health/bad_quantity": quantity.astype(jnp.int32)}


def watched_names(agent: Any, agent_state_shapes: Any) -> tuple[str, ...]:
    """What `health/bad_quantity` indexes: the agent's watched metrics, then its watched parameter groups."""
    return tuple(agent.watched) + tuple(agent_state_shapes.watched_params())


def raise_if_unhealthy(
    *,
    epoch: int,
    updates_per_epoch: int,
    first_seed: int,
    num_seeds: int,
    names: tuple[str, ...],
    first_bad_step: Any,
    bad_quantity: Any,
    checkpoints: Callable[[], list[Path]],
) -> None:
    """NumericalError naming the quantity, SGD step (and seed) where a NaN / Inf first appeared.

    `checkpoints()`: the run's training-state checkpoints, oldest first (the error names the newest)."""
    steps, quantities = np.atleast_1d(parallel.to_host(first_bad_step)), np.atleast_1d(parallel.to_host(bad_quantity))
    bad_seeds = np.flatnonzero(steps >= 0)
    if bad_seeds.size == 0:
        return
    i = int(bad_seeds[0])
    name = names[int(quantities[i])]
    sgd_step = (epoch - 1) * updates_per_epoch + int(steps[i]) + 1
    which = f" of seed {first_seed + i}" if num_seeds > 1 else ""
    saved = checkpoints()
    kept = f"the last good checkpoint is {saved[-1]}" if saved else "no checkpoint had been saved yet"
    raise NumericalError(
        f"{name}{which} became NaN or Inf at SGD step {sgd_step} (epoch {epoch}); {kept}; "
        f"lower the learning rates (--actor-lr, --critic-lr) or set --max-grad-norm"
    )
