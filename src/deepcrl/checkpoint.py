"""Checkpoints that carry their own config, so a policy loads from a path alone.

Layout of a run directory's checkpoint:

    RUN_DIR/checkpoint/config.json     the full run Config (networks are rebuilt from it)
    RUN_DIR/checkpoint/agent.msgpack   actor and critic parameters and the entropy temperature (flax msgpack)

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

from deepcrl.config import Config, validate
from deepcrl.errors import ConfigError

CHECKPOINT_DIR = "checkpoint"


def _agent_payload(agent_state: Any) -> dict[str, Any]:
    return {
        "actor_params": agent_state.actor_params,
        "critic_params": agent_state.critic_params,
        "log_alpha": agent_state.log_alpha,
    }


def save_checkpoint(run_dir: str | Path, config: Config, agent_state: Any) -> Path:
    run_dir = Path(run_dir)
    final = run_dir / CHECKPOINT_DIR
    tmp = Path(tempfile.mkdtemp(prefix=".checkpoint-", dir=run_dir))
    try:
        payload = jax.device_get(_agent_payload(agent_state))
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


def load_checkpoint(run_dir: str | Path):
    """(config, agent, params payload) of the checkpoint in run_dir; ConfigError if missing or broken."""
    from deepcrl.training import build_agent

    ckpt = Path(run_dir) / CHECKPOINT_DIR
    if not (ckpt / "config.json").is_file() or not (ckpt / "agent.msgpack").is_file():
        raise ConfigError(f"no checkpoint in {str(run_dir)!r}: expected {CHECKPOINT_DIR}/config.json and {CHECKPOINT_DIR}/agent.msgpack")
    config = Config.load(ckpt / "config.json")
    validate(config)  # a hand-edited or foreign config.json fails here, not deep inside network code
    env, agent = build_agent(config)
    # Shapes only: building the parameters eagerly would just be thrown away.
    target = jax.eval_shape(lambda key: _agent_payload(agent.init(key)), jax.random.PRNGKey(0))
    try:
        payload = serialization.from_bytes(target, (ckpt / "agent.msgpack").read_bytes())
    except Exception as e:  # msgpack / shape errors: a corrupted or foreign file
        raise ConfigError(f"checkpoint {str(ckpt / 'agent.msgpack')!r} cannot be loaded: {type(e).__name__}: {e}".splitlines()[0]) from None
    # from_bytes does not check shapes: parameters saved for other network sizes would load silently.
    want = jax.tree_util.tree_structure(target), [(x.shape, x.dtype) for x in jax.tree_util.tree_leaves(target)]
    got = jax.tree_util.tree_structure(payload), [(np.shape(x), np.asarray(x).dtype) for x in jax.tree_util.tree_leaves(payload)]
    if want != got:
        raise ConfigError(f"checkpoint {str(ckpt / 'agent.msgpack')!r} does not match the networks of {str(ckpt / 'config.json')!r} (parameter shapes differ)")
    return config, env, agent, payload


def load_policy(run_dir: str | Path) -> Callable[[jax.Array], jax.Array]:
    """A jitted deterministic policy: observation concat(state, goal) -> action, for one or a batch."""
    _, _, agent, payload = load_checkpoint(run_dir)
    actor_params = payload["actor_params"]

    @jax.jit
    def policy(obs: jax.Array) -> jax.Array:
        obs = jnp.asarray(obs, jnp.float32)
        if obs.ndim == 1:
            return agent.act(actor_params, obs[None], deterministic=True)[0]
        return agent.act(actor_params, obs, deterministic=True)

    return policy
