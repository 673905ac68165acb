"""Checkpoints that carry their own config, so a policy loads from a path alone.

Layout of a run directory's checkpoint:

    RUN_DIR/checkpoint/config.json     the full run Config (networks are rebuilt from it)
    RUN_DIR/checkpoint/agent.msgpack   the agent's parameters (flax msgpack): actor_params, and critic_params and
                                       log_alpha for the agents that have them (crl, sac; td3 has no temperature);
                                       with --num-seeds N every array has a leading seed axis of length N

Writes are atomic: everything goes to a temporary folder beside it, which is then renamed into place,
so an interrupted save never leaves a half-written checkpoint.
"""

from __future__ import annotations

import hashlib
import json
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
from deepcrl.config import Config, validate
from deepcrl.errors import ConfigError

CHECKPOINT_DIR = "checkpoint"


def _agent_payload(agent_state: Any) -> dict[str, Any]:
    """The parameters a final checkpoint keeps: the agent state's `export()` (always the actor's, and
    the critic and temperature for the agents that have them; no optimiser or target-network state)."""
    return agent_state.export()


def save_checkpoint(run_dir: str | Path, config: Config, agent_state: Any) -> Path:
    run_dir = Path(run_dir)
    final = run_dir / CHECKPOINT_DIR
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
        raise ConfigError(f"checkpoint {str(ckpt / 'agent.msgpack')!r} does not match the networks of {str(ckpt / 'config.json')!r} (parameter shapes differ)")
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
    config, _, agent, payload = load_checkpoint(run_dir)
    actor_params = seed_payload(config, payload, seed)["actor_params"]

    @jax.jit
    def policy(obs: jax.Array) -> jax.Array:
        obs = jnp.asarray(obs, jnp.float32)
        if obs.ndim == 1:
            return agent.act(actor_params, obs[None], deterministic=True)[0]
        return agent.act(actor_params, obs, deterministic=True)

    return policy


# ----------------------------------------------------------------------------------------------
# Whole training-state checkpoints, for resuming a run exactly
# ----------------------------------------------------------------------------------------------
#
#   RUN_DIR/state/epoch_00000012/train_state.msgpack  agent (networks, optimisers, temperature),
#                                                     environment states, episode ids, PRNG key,
#                                                     counters
#   RUN_DIR/state/epoch_00000012/buffer.msgpack       the replay buffer (unless --no-save-buffer)
#   RUN_DIR/state/epoch_00000012/meta.json            epoch, env steps, SHA-256 of each file
#
# Each checkpoint is written into a hidden temporary folder and renamed into place, so a folder named
# epoch_* is always complete; the SHA-256 sums catch a file damaged afterwards. The newest `keep`
# checkpoints are kept.

STATE_DIR = "state"
_STATE_FILE = "train_state.msgpack"
_BUFFER_FILE = "buffer.msgpack"
_META_FILE = "meta.json"


def _physics_payload(physics: Any) -> Any:
    """The environments' physics as something msgpack can store: as is when flax knows the type (the
    point mass), else its leaves by position (MuJoCo's mjx.Data is a pytree flax cannot serialise)."""
    if serialization.to_state_dict(physics) is not physics:
        return physics
    return {str(i): leaf for i, leaf in enumerate(jax.tree_util.tree_leaves(physics))}


def _physics_restore(target: Any, payload: Any) -> Any:
    if serialization.to_state_dict(target) is not target:
        return payload
    leaves, treedef = jax.tree_util.tree_flatten(target)
    return jax.tree_util.tree_unflatten(treedef, [payload[str(i)] for i in range(len(leaves))])


def _state_payload(state: Any) -> dict[str, Any]:
    return {
        "agent": state.agent,
        "envs": state.envs.replace(physics=_physics_payload(state.envs.physics)),
        "episode_ids": state.episode_ids,
        "key": state.key,
        "env_steps": state.env_steps,
        "epoch": state.epoch,
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_train_state(run_dir: str | Path, state: Any, *, keep: int, save_buffer: bool) -> Path:
    """Write the whole TrainState atomically as RUN_DIR/state/epoch_N; keep the newest `keep`."""
    root = Path(run_dir) / STATE_DIR
    host = parallel.to_host(state)  # every process takes part in gathering; only the first writes
    epoch = int(np.asarray(host.epoch).max())
    if not parallel.is_main_process():
        return root / f"epoch_{epoch:08d}"
    root.mkdir(parents=True, exist_ok=True)
    files = {_STATE_FILE: serialization.to_bytes(_state_payload(host))}
    if save_buffer:
        files[_BUFFER_FILE] = serialization.to_bytes(host.buffer)
    meta = {
        "epoch": epoch,
        "env_steps": int(np.asarray(host.env_steps).max()),
        "buffer_saved": save_buffer,
        "sha256": {name: _sha256(data) for name, data in files.items()},
    }
    final = root / f"epoch_{epoch:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=".epoch-", dir=root))
    os.chmod(tmp, 0o755)
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        (tmp / _META_FILE).write_text(json.dumps(meta, indent=2))
        if final.exists():  # the same epoch saved again (e.g. an interrupt right after a periodic save)
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_train_states(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_train_states(run_dir: str | Path) -> list[Path]:
    """Complete training-state checkpoints of a run, oldest first."""
    root = Path(run_dir) / STATE_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("epoch_"))


def restore_train_state(path: str | Path, target: Any) -> tuple[Any, bool]:
    """Load a checkpoint folder into the structure of `target` (a TrainState or its eval_shape).

    Returns (state without a usable buffer if none was saved, buffer_restored). Raises ConfigError if
    a file is missing, damaged (SHA-256 mismatch), unreadable, or holds other shapes than `target`.
    """
    path = Path(path)
    try:
        meta = json.loads((path / _META_FILE).read_text())
        sums = meta["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"checkpoint {str(path)!r} has no readable {_META_FILE}: {e}".splitlines()[0]) from None
    blobs = {}
    for name in (_STATE_FILE, _BUFFER_FILE):
        if name not in sums:
            continue
        try:
            data = (path / name).read_bytes()
        except OSError as e:
            raise ConfigError(f"checkpoint file {str(path / name)!r} cannot be read: {e}") from None
        if _sha256(data) != sums[name]:
            raise ConfigError(f"checkpoint file {str(path / name)!r} is damaged (its SHA-256 does not match {_META_FILE}); resume from an older checkpoint or start again")
        blobs[name] = data
    if _STATE_FILE not in blobs:
        raise ConfigError(f"checkpoint {str(path)!r} lists no {_STATE_FILE}")
    payload_target = _state_payload(target)
    payload = _from_bytes_checked(payload_target, blobs[_STATE_FILE], path / _STATE_FILE)
    buffer = target.buffer
    if _BUFFER_FILE in blobs:
        buffer = _from_bytes_checked(target.buffer, blobs[_BUFFER_FILE], path / _BUFFER_FILE)
    payload["envs"] = payload["envs"].replace(physics=_physics_restore(target.envs.physics, payload["envs"].physics))
    state = target.replace(buffer=buffer, **payload)
    return state, _BUFFER_FILE in blobs


def _from_bytes_checked(target: Any, data: bytes, where: Path) -> Any:
    try:
        restored = serialization.from_bytes(target, data)
    except Exception as e:  # msgpack / structure errors
        raise ConfigError(f"checkpoint file {str(where)!r} cannot be loaded: {type(e).__name__}: {e}".splitlines()[0]) from None
    want = [(tuple(x.shape), np.dtype(x.dtype)) for x in jax.tree_util.tree_leaves(target)]
    got = [(tuple(np.shape(x)), np.asarray(x).dtype) for x in jax.tree_util.tree_leaves(restored)]
    if want != got:
        raise ConfigError(f"checkpoint file {str(where)!r} does not match this run's networks or sizes (array shapes differ)")
    return jax.tree_util.tree_map(jnp.asarray, restored)
