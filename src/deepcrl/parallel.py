"""Data parallelism over devices with JAX's own sharding: a 1-D device mesh and `shard_map`.

One training program runs on every device of the mesh (SPMD). Each device steps `num_envs / D`
environments, keeps their columns of the replay buffer and samples `batch_size / D` transitions per
SGD step; parameters and optimiser states are replicated. Inside the update the critic all-gathers the
goal representations, so the InfoNCE negatives are the global batch, and gradients are averaged over
devices (see agents/crl.py). Communication is only what `jax.lax.all_gather` / `pmean` put there.

Several hosts (or processes): start the same command once per process with

    JAX_COORDINATOR_ADDRESS=host0:1234 JAX_NUM_PROCESSES=P JAX_PROCESS_ID=i deepcrl train --num-devices 0 ...

(`maybe_initialize_distributed`; from Python call `jax.distributed.initialize()` before anything
else). `jax.devices()` then lists every process's devices, the mesh spans them all, and the same
jitted program runs in each process. `to_host` gathers what the host loop logs and checkpoints;
process 0 alone writes the run directory, which resuming expects every process to see (a shared
filesystem). See docs/scaling.md.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from deepcrl.config import Config, check_divisible_by_devices
from deepcrl.errors import ConfigError

DATA_AXIS = "data"  # the mesh axis environments and batch rows are split over

REPLICATED = P()
SPLIT = P(DATA_AXIS)  # leading axis split over devices
SPLIT_SECOND = P(None, DATA_AXIS)  # second axis split (time-major buffer columns)


def maybe_initialize_distributed() -> bool:
    """Join a multi-process run when JAX_COORDINATOR_ADDRESS is set; True if this process is part of one.

    Reads JAX_COORDINATOR_ADDRESS (host:port of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID;
    the last two may be left out where `jax.distributed.initialize` detects them (SLURM, Open MPI,
    Kubernetes). Must run before anything else touches JAX's devices. CPU processes talk over gloo.
    """
    if jax.distributed.is_initialized():
        return True
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if not address:
        return False
    num_processes, process_id = os.environ.get("JAX_NUM_PROCESSES"), os.environ.get("JAX_PROCESS_ID")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # used by the CPU backend only
    jax.distributed.initialize(
        coordinator_address=address,
        num_processes=None if num_processes is None else int(num_processes),
        process_id=None if process_id is None else int(process_id),
    )
    return True


def sync_processes(name: str) -> None:
    """Wait until every process of a multi-process run gets here (a no-op with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def resolve_num_devices(config: Config) -> int:
    """The device count a config runs on (0 = every visible device); ConfigError if not available."""
    available = jax.device_count()
    wanted = config.num_devices or available
    if wanted > available:
        platform = jax.devices()[0].platform
        hint = f"; on a CPU, simulate devices with XLA_FLAGS=--xla_force_host_platform_device_count={wanted}" if platform == "cpu" else ""
        raise ConfigError(f"num_devices={wanted} is more than the {available} {platform} device(s) JAX sees{hint}")
    check_divisible_by_devices(config, wanted)
    return wanted


def make_mesh(num_devices: int) -> Mesh:
    """A 1-D mesh over the first `num_devices` devices, axis DATA_AXIS."""
    devices = np.array(jax.devices()[:num_devices])
    return Mesh(devices, (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def shard(fn: Callable, mesh: Mesh, in_specs: Any, out_specs: Any) -> Callable:
    """`fn` run per device on its shards (shard_map, replication checked)."""
    return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=True)


def prefix_specs(specs: Any, axes: int) -> Any:
    """Specs for arrays with `axes` extra leading (unsplit) axes, e.g. the seed axis of --num-seeds."""
    return jax.tree_util.tree_map(lambda s: P(*([None] * axes), *s), specs, is_leaf=lambda s: isinstance(s, P))


def put(tree: Any, mesh: Mesh | None, specs: Any) -> Any:
    """Place host or device arrays with the given specs (a no-op on one device)."""
    if mesh is None:
        return tree
    shardings = jax.tree_util.tree_map(lambda s: NamedSharding(mesh, s), specs, is_leaf=lambda s: isinstance(s, P))
    return jax.device_put(tree, shardings)


def to_host(tree: Any) -> Any:
    """NumPy copies of a pytree of global arrays, gathered across hosts where needed."""

    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(jax.device_get(x))

    return jax.tree_util.tree_map(one, tree)


def is_main_process() -> bool:
    """True on the process that writes files (process 0; the only one on a single host)."""
    return jax.process_index() == 0


# ----------------------------------------------------------------------------------------------
# Inside a program run per device (`axis_name` the mesh axis; every helper is the identity when None)
# ----------------------------------------------------------------------------------------------


def device_key(key: jax.Array, axis_name: str | None) -> jax.Array:
    """A key of this device's own stream (environments, replay sampling)."""
    return key if axis_name is None else jax.random.fold_in(key, jax.lax.axis_index(axis_name))


def mean_over_devices(tree: Any, axis_name: str | None) -> Any:
    return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def sum_over_devices(tree: Any, axis_name: str | None) -> Any:
    return tree if axis_name is None else jax.lax.psum(tree, axis_name)


def per_device(tree: Any, axis_name: str | None) -> Any:
    """Mark every leaf as differing across devices (a scan carry must keep one replication type)."""
    if axis_name is None:
        return tree

    def cast(x):
        aval = jax.typeof(x)  # JAX < 0.10 names the varying axes `aval.vma`
        varying = aval.manual_axis_type.varying if hasattr(aval, "manual_axis_type") else aval.vma
        if axis_name in varying:
            return x
        if not hasattr(jax.lax, "pcast"):  # JAX < 0.8
            return jax.lax.pvary(x, (axis_name,))
        return jax.lax.pcast(x, (axis_name,), to="varying")

    return jax.tree_util.tree_map(cast, tree)
