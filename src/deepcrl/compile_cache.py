"""JAX's persistent compilation cache, shared by the runs of a sweep and by repeated runs.

A run's programs depend only on its shapes and static settings, so the tenth point of a sweep (or the
same `deepcrl train` run again) compiles nothing: XLA's executables are read from a cache folder.
`deepcrl sweep` turns the cache on for its points (`--cache-dir DIR`, default `cache_dir()`;
`--no-compile-cache` turns it off); for a single `deepcrl train`, set JAX_COMPILATION_CACHE_DIR=DIR.

Only programs that took at least JAX's threshold to compile are stored (1 s by default,
JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS); a cache entry is keyed by the program, the compile options
and the jax / jaxlib versions and devices, so a stale entry is never used.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"  # jax reads it when it is imported


def cache_dir() -> Path:
    """The default cache folder: $JAX_COMPILATION_CACHE_DIR if set, else $XDG_CACHE_HOME/deepcrl/jax
    (~/.cache/deepcrl/jax)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deepcrl" / "jax"


def cache_environment(folder: str | Path | None) -> dict[str, str]:
    """Environment variables that give a child process the cache in `folder` (None: none; a folder the
    environment already names is kept)."""
    if folder is None:
        return {}
    return {CACHE_ENV: str(Path(folder).expanduser().resolve())}


def enable_compile_cache(folder: str | Path) -> None:
    """Use the cache in `folder` in this process (from now on)."""
    import jax

    folder = Path(folder).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
