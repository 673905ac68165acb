"""Policy checkpoints (RUN_DIR/checkpoint/): what a finished run keeps to act, with its own config, so a
policy loads from a path alone. (Training-state checkpoints, RUN_DIR/state/, for resuming: train_state.py.)

Layout:

    RUN_DIR/checkpoint/config.json     the full run Config (networks are rebuilt from it)
    RUN_DIR/checkpoint/agent.msgpack   the agent's parameters (flax msgpack): actor_params, and critic_params and
                                       log_alpha for the agents that have them (crl, sac; td3 has no temperature);
                                       with --num-seeds N every array has a leading seed axis of length N

Writes are atomic: everything goes to a temporary folder beside it, which is then renamed into place,
so an interrupted save never leaves a half-written checkpoint.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from deepcrl import parallel
from deepcrl.build import prepare
from deepcrl.config import Config
from deepcrl.config_files import load_config_file
from deepcrl.errors import ConfigError

POLICY_DIR = "checkpoint"  # RUN_DIR/checkpoint: the policy checkpoint's folder (the on-disk name since the first release)


def _agent_payload(agent_state: Any) -> dict[str, Any]:
    """The parameters a final checkpoint keeps: the agent state's `export()` (always the actor's, and
    the critic and temperature for the agents that have them; no optimiser or target-network state)."""
    return agent_state.export()


def save_policy_checkpoint(run_dir: str | Path, config: Config, agent_state: Any) -> Path:
    """Write RUN_DIR/checkpoint atomically: the agent state's `export()` and the run's config."""
    run_dir = Path(run_dir)
    final = run_dir / POLICY_DIR
    payload = parallel.to_host(_agent_payload(agent_state))  # every process takes part in gathering; one writes
    if not parallel.is_main_process():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=run_dir))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint is as readable as the run directory
    try:
        (tmp / "agent.msgpack").write_bytes(serialization.to_bytes(payload))
        (tmp / "config.json").write_text(config.to_json())
        old = None
        if final.exists():
            old = run_dir / f".checkpoint-old-{os.getpid()}"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_policy_checkpoint(run_dir: str | Path):
    """(config, task, agent, params payload) of the policy checkpoint in run_dir; ConfigError if missing or broken."""
    ckpt = Path(run_dir) / POLICY_DIR
    if not (ckpt / "config.json").is_file() or not (ckpt / "agent.msgpack").is_file():
        raise ConfigError(f"no checkpoint in {str(run_dir)!r}: expected {POLICY_DIR}/config.json and {POLICY_DIR}/agent.msgpack")
    setup = prepare(load_config_file(ckpt / "config.json"))  # a hand-edited or foreign config.json fails here, not deep inside network code
    config, env, agent = setup.config, setup.task, setup.build_agent()
    # Shapes only: building the parameters eagerly would just be thrown away.
    init = lambda key: _agent_payload(agent.init(key))  # noqa: E731
    if config.num_seeds > 1:
        init, key = jax.vmap(init), jax.random.split(jax.random.PRNGKey(0), config.num_seeds)
    else:
        key = jax.random.PRNGKey(0)
    target = jax.eval_shape(init, key)
    try:
        payload = serialization.from_bytes(target, (ckpt / "agent.msgpack").read_bytes())
    except Exception as e:  # msgpack / shape errors: a corrupted or foreign file
        raise ConfigError(f"checkpoint {str(ckpt / 'agent.msgpack')!r} cannot be loaded: {type(e).__name__}: {e}".splitlines()[0]) from None
    # from_bytes does not check shapes: parameters saved for other network sizes would load silently.
    want = jax.tree_util.tree_structure(target), [(x.shape, x.dtype) for x in jax.tree_util.tree_leaves(target)]
    got = jax.tree_util.tree_structure(payload), [(np.shape(x), np.asarray(x).dtype) for x in jax.tree_util.tree_leaves(payload)]
    if want != got:
        raise ConfigError(
            f"checkpoint {str(ckpt / 'agent.msgpack')!r} does not match the networks of {str(ckpt / 'config.json')!r} (parameter shapes differ)"
        )
    return config, env, agent, payload


def seed_payload(config: Config, payload: dict[str, Any], seed: int | None) -> dict[str, Any]:
    """The parameters of one seed of a checkpoint (`seed`: the seed itself; None: the run's first seed)."""
    if config.num_seeds == 1:
        if seed is not None and seed != config.seed:
            raise ConfigError(f"seed={seed} is not in this run; it trained seed {config.seed} only")
        return payload
    seeds = range(config.seed, config.seed + config.num_seeds)
    seed = config.seed if seed is None else seed
    if seed not in seeds:
        raise ConfigError(f"seed={seed} is not in this run; it trained seeds {seeds.start} .. {seeds.stop - 1}")
    return jax.tree_util.tree_map(lambda x: x[seed - config.seed], payload)


def load_policy(run_dir: str | Path, seed: int | None = None) -> Callable[[jax.Array], jax.Array]:
    """A jitted deterministic policy: observation concat(state, goal) -> action, for one or a batch.

    For a run of several seeds (--num-seeds), `seed` picks one (default: the run's first seed).
    """
    config, _, agent, payload = load_policy_checkpoint(run_dir)
    actor_params = seed_payload(config, payload, seed)["actor_params"]

    @jax.jit
    def policy(obs: jax.Array) -> jax.Array:
        obs = jnp.asarray(obs, jnp.float32)
        if obs.ndim == 1:
            return agent.act(actor_params, obs[None], deterministic=True)[0]
        return agent.act(actor_params, obs, deterministic=True)

    return policy
