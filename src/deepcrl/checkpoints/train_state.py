"""Training-state checkpoints (RUN_DIR/state/epoch_N/): the whole state of a run, for resuming it exactly.
(Policy checkpoints, RUN_DIR/checkpoint/, what a finished run keeps to act: policy.py.)

    RUN_DIR/state/epoch_00000012/train_state.msgpack  agent (networks, optimisers, temperature),
                                                      environment states, episode ids, PRNG key,
                                                      counters
    RUN_DIR/state/epoch_00000012/buffer.msgpack       the replay buffer (unless --no-save-buffer)
    RUN_DIR/state/epoch_00000012/meta.json            epoch, env steps, SHA-256 of each file

The folder is named by the epochs done, zero-padded to 8 digits (so names sort by epoch).

Each checkpoint is written into a hidden temporary folder and renamed into place, so a folder named
epoch_* is always complete; the SHA-256 sums catch a file damaged afterwards. The newest `keep`
checkpoints are kept.

A training run writes them with a `TrainStateWriter`: training stops only while the state is copied
to host memory; serialising, hashing and writing happen in a background thread while the next epochs
run (one write at a time). `save_train_state` is the same write, synchronous.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from deepcrl import parallel
from deepcrl.errors import CheckpointWriteError, ConfigError

TRAIN_STATE_DIR = "state"  # RUN_DIR/state: training-state checkpoints, one folder epoch_<8 digits> each
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


def snapshot_train_state(state: Any) -> Any:
    """Host copies of a TrainState that training can no longer change. Every process takes part (the
    arrays are gathered across hosts). On a CPU `device_get` returns views of the device buffers, which
    the next epoch (it donates its state) could not reuse without copying them itself; they are copied
    here, once, so the epoch's donation goes ahead and the snapshot never aliases the training state."""
    host = parallel.to_host(state)
    return jax.tree_util.tree_map(lambda a: np.array(a) if isinstance(a, np.ndarray) and not a.flags.owndata else a, host)


def train_state_path(run_dir: str | Path, host: Any) -> Path:
    """Where the checkpoint of a (host) TrainState goes: RUN_DIR/state/epoch_<epochs done>."""
    return Path(run_dir) / TRAIN_STATE_DIR / f"epoch_{int(np.asarray(host.epoch).max()):08d}"


def write_train_state(run_dir: str | Path, host: Any, *, keep: int, save_buffer: bool) -> Path:
    """Write a snapshot (`snapshot_train_state`) atomically as RUN_DIR/state/epoch_N; keep the newest `keep`."""
    final = train_state_path(run_dir, host)
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    files = {_STATE_FILE: serialization.to_bytes(_state_payload(host))}
    if save_buffer:
        files[_BUFFER_FILE] = serialization.to_bytes(host.buffer)
    meta = {
        "epoch": int(np.asarray(host.epoch).max()),
        "env_steps": int(np.asarray(host.env_steps).max()),
        "buffer_saved": save_buffer,
        "sha256": {name: _sha256(data) for name, data in files.items()},
    }
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


def save_train_state(run_dir: str | Path, state: Any, *, keep: int, save_buffer: bool) -> Path:
    """Write the whole TrainState atomically as RUN_DIR/state/epoch_N, now; keep the newest `keep`."""
    host = snapshot_train_state(state)  # every process takes part in gathering; only the first writes
    if not parallel.is_main_process():
        return train_state_path(run_dir, host)
    return write_train_state(run_dir, host, keep=keep, save_buffer=save_buffer)


class TrainStateWriter:
    """A run's training-state checkpoints, written in a background thread.

    `save(state)` stops training only to copy the state to host memory (`snapshot_train_state`), then
    returns the folder the checkpoint will have; the write (serialise, SHA-256, fsync, rename, prune)
    runs while training goes on. One write at a time: `save` first waits for the one before. A write
    that failed is raised, as a CheckpointWriteError naming its epoch, by the next `save` or `wait`;
    until a write has finished its folder does not exist, so an older checkpoint is what a kill leaves.
    """

    def __init__(self, run_dir: str | Path, *, keep: int, save_buffer: bool):
        self.run_dir = Path(run_dir)
        self.keep, self.save_buffer = keep, save_buffer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deepcrl-checkpoint")
        self._pending: tuple[Future, Path] | None = None

    def save(self, state: Any) -> Path:
        self.wait()
        host = snapshot_train_state(state)
        path = train_state_path(self.run_dir, host)
        if parallel.is_main_process():
            self._pending = (self._pool.submit(write_train_state, self.run_dir, host, keep=self.keep, save_buffer=self.save_buffer), path)
        return path

    def wait(self) -> None:
        """Block until the write in flight (if any) is done; raise CheckpointWriteError if it failed."""
        if self._pending is None:
            return
        future, path = self._pending
        self._pending = None
        try:
            future.result()
        except OSError as e:
            saved = list_train_states(self.run_dir)
            kept = f"the previous checkpoint {saved[-1]} is intact" if saved else "no earlier checkpoint exists"
            epoch = int(path.name.removeprefix("epoch_"))
            raise CheckpointWriteError(
                f"could not write the checkpoint of epoch {epoch} in {path.parent}: {e.strerror or e}; {kept}"
            ) from None

    def settle(self) -> None:
        """Let the write in flight finish, its errors unraised (when the run is failing for another reason)."""
        try:
            self.wait()
        except Exception:
            pass

    def close(self) -> None:
        self.settle()
        self._pool.shutdown(wait=True)


def list_train_states(run_dir: str | Path) -> list[Path]:
    """Complete training-state checkpoints of a run, oldest first."""
    root = Path(run_dir) / TRAIN_STATE_DIR
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
            raise ConfigError(
                f"checkpoint file {str(path / name)!r} is damaged (its SHA-256 does not match {_META_FILE}); resume from an older checkpoint or start again"
            )
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
