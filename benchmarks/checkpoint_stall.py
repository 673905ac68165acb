"""How long training stops for one training-state checkpoint of a paper-sized run.

The state is the one `deepcrl train --preset paper --env ant_big_maze` trains (512 environments x
10,000 steps of replay buffer, 0.82 GB, plus the depth-4 networks, their Adam state and the MJX
environment states), built from `Trainer.state_shapes()` and filled with random bits (nothing is
compiled or trained; the bytes written are what a run writes). Two ways of writing it, alternated
`--repeats` times into a fresh run folder:

- `sync`: `save_train_state`, the synchronous write (host copy, msgpack, SHA-256, fsync, rename), which
  is how the training loop wrote checkpoints until the writer below; training stops for all of it;
- `async`: `TrainStateWriter.save`, what the loop uses now: training stops only while the state is
  copied to host memory; the write runs in a background thread (its duration is `write_s`, timed by
  `wait()`), beside the next epochs.

`stall_s` is the time the call keeps the training loop from its next epoch. Every checkpoint written is
restored (`restore_train_state`, SHA-256 checked) and compared with the state leaf by leaf: bitwise.

    python benchmarks/checkpoint_stall.py            # the paper-sized state (about 1-2 minutes, 3 GB of disk)
    python benchmarks/checkpoint_stall.py --quick    # smoke test: a tiny point-maze state
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, make_parser, output_path, print_table, write_results  # noqa: E402
from deepcrl.checkpoints import TrainStateWriter, restore_train_state, save_train_state  # noqa: E402
from deepcrl.config import Config  # noqa: E402
from deepcrl.presets import PRESETS  # noqa: E402
from deepcrl.programs import Trainer  # noqa: E402

NAME = "checkpoint_stall"

SIZES = {
    "paper": dict(PRESETS["paper"], env="ant_big_maze"),  # the paper's Ant Big Maze run at depth 4
    "tiny": dict(env="point_open", depth=4, width=16, num_envs=8, buffer_size=200, prefill_steps=20, batch_size=16),  # --quick
}


def random_state(shapes, seed: int = 0):
    """A concrete TrainState of the given shapes, every number random (keys: fresh PRNG keys)."""
    rng = np.random.default_rng(seed)

    def one(s):
        if jnp.issubdtype(s.dtype, jax.dtypes.prng_key):
            return jax.random.split(jax.random.key(int(rng.integers(1 << 31))), s.shape)
        if s.dtype == jnp.bool_:
            return jnp.asarray(rng.integers(0, 2, s.shape).astype(bool))
        if jnp.issubdtype(s.dtype, jnp.integer):
            return jnp.asarray(rng.integers(0, 1000, s.shape).astype(s.dtype))
        return jnp.asarray(rng.standard_normal(s.shape, dtype=np.float32).astype(s.dtype))

    return jax.tree_util.tree_map(one, shapes)


def nbytes(tree) -> int:
    return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree_util.tree_leaves(tree) if hasattr(x, "dtype"))


def same_bits(a, b) -> bool:
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    if len(leaves_a) != len(leaves_b):
        return False
    unwrap = lambda x: np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x)  # noqa: E731
    return all(np.array_equal(unwrap(x), unwrap(y)) for x, y in zip(leaves_a, leaves_b))


def main() -> None:
    parser = make_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="checkpoints per way of writing (default 3; --quick: 2)")
    parser.add_argument("--dir", type=Path, default=None, help="where the run folders are written (default: a temporary folder)")
    args = parser.parse_args()
    started = time.time()
    header(NAME, args.quick)
    size = "tiny" if args.quick else "paper"
    repeats = args.repeats or (2 if args.quick else 3)
    config = dataclasses.replace(Config(progress=False, tensorboard=False), **SIZES[size])
    trainer = Trainer(config)
    shapes = trainer.state_shapes()
    state = jax.block_until_ready(random_state(shapes))
    state_bytes, buffer_bytes = nbytes(state), nbytes(state.buffer)
    print(f"  {size}: training state {state_bytes / 1e9:.3f} GB, of which the replay buffer {buffer_bytes / 1e9:.3f} GB", flush=True)

    root = Path(tempfile.mkdtemp(prefix="deepcrl-ckpt-", dir=args.dir))
    rows: list[dict] = []
    try:
        for i in range(repeats):
            for way in ("sync", "async"):
                run_dir = root / f"{way}-{i}"
                start = time.perf_counter()
                if way == "sync":
                    path = save_train_state(run_dir, state, keep=2, save_buffer=True)
                    stall = write = time.perf_counter() - start
                else:
                    writer = TrainStateWriter(run_dir, keep=2, save_buffer=True)
                    path = writer.save(state)
                    stall = time.perf_counter() - start
                    writer.wait()
                    write = time.perf_counter() - start - stall
                    writer.close()
                restored, with_buffer = restore_train_state(path, shapes)
                exact = with_buffer and same_bits(restored, state)
                on_disk = sum(f.stat().st_size for f in path.iterdir())
                rows.append({"size": size, "way": way, "repeat": i, "stall_s": stall, "write_s": write, "bytes": on_disk, "bitwise": exact})
                print(f"  {way} #{i}: training stopped {stall:.3f} s; the write took {write:.3f} s; restored bitwise: {exact}", flush=True)
                del restored
                shutil.rmtree(run_dir)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    summary = []
    for way in ("sync", "async"):
        mine = [r for r in rows if r["way"] == way]
        summary.append(
            {
                "way": way,
                "stall_s_median": statistics.median(r["stall_s"] for r in mine),
                "stall_s_max": max(r["stall_s"] for r in mine),
                "write_s_median": statistics.median(r["write_s"] for r in mine),
                "bytes": mine[0]["bytes"],
                "bitwise": all(r["bitwise"] for r in mine),
            }
        )
    print_table(
        f"{NAME}: one training-state checkpoint of {size} ({state_bytes / 1e9:.2f} GB), median of {repeats}",
        ["way", "training stopped (s)", "max (s)", "write (s)", "file bytes", "resume bitwise"],
        [[s["way"], s["stall_s_median"], s["stall_s_max"], s["write_s_median"], s["bytes"], s["bitwise"]] for s in summary],
    )
    settings = {
        "quick": args.quick,
        "size": size,
        "repeats": repeats,
        "config": SIZES[size],
        "state_bytes": state_bytes,
        "buffer_bytes": buffer_bytes,
    }
    write_results(output_path(NAME, args), NAME, settings, rows, started, extra={"summary": summary})
    if not all(s["bitwise"] for s in summary):
        raise SystemExit("a restored checkpoint differs from the state saved")


if __name__ == "__main__":
    main()
