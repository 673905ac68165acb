"""Helpers shared by the benchmark scripts: command line, machine info, timing, tables, JSON.

Every script follows the same conventions:

    python benchmarks/NAME.py [--quick] [--out PATH]

prints a table and writes ``benchmarks/results/NAME.json`` (or ``--out``) holding the machine info,
the exact command line, the settings and every measured row. Times are wall-clock seconds from
``time.perf_counter`` around ``jax.block_until_ready``, warm-up calls excluded, median of repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import jax

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------


def make_parser(name: str, description: str) -> argparse.ArgumentParser:
    """An argument parser with the two flags every benchmark has: --quick and --out."""
    parser = argparse.ArgumentParser(prog=f"benchmarks/{name}.py", description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, finishes in seconds (smoke test, not for the docs)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"where to write the JSON results (default: benchmarks/results/{name}.json, "
        f"with --quick benchmarks/results/{name}.quick.json so smoke tests never overwrite full results)",
    )
    return parser


def output_path(name: str, args: argparse.Namespace) -> Path:
    """--out, or the default results file of this benchmark (a separate one for --quick)."""
    if args.out is not None:
        return args.out
    return RESULTS_DIR / (f"{name}.quick.json" if args.quick else f"{name}.json")


def command_line() -> str:
    """The command that started this process, as one could paste it into a shell."""
    argv = list(sys.argv)
    script = argv[0]
    try:
        script = os.path.relpath(script)
    except ValueError:
        pass
    return " ".join(["python", shlex.quote(script), *map(shlex.quote, argv[1:])])


# ----------------------------------------------------------------------------------------------
# machine
# ----------------------------------------------------------------------------------------------


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """Versions, backend, device and host facts that the numbers depend on."""
    import jaxlib

    devices = jax.devices()
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "jax_version": jax.__version__,
        "jaxlib_version": getattr(jaxlib, "__version__", "unknown"),
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python_version": platform.python_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_average_1_5_15": load_average(),
    }


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------


def time_call(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> dict[str, Any]:
    """Wall-clock seconds of ``jax.block_until_ready(fn())``: warm-up calls excluded, median of repeats."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return summarize(times)


def summarize(times: Sequence[float]) -> dict[str, Any]:
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
        "repeats": len(times),
        "times_s": [round(t, 6) for t in times],
    }


def flops_of(compiled: Any) -> float | None:
    """FLOPs that XLA's cost analysis assigns to a compiled program (None when it reports none).

    ``Compiled.cost_analysis()`` returns a dict in recent JAX and a list with one dict per
    computation in older versions. XLA counts the body of a while loop (``lax.scan``) once,
    whatever its trip count.
    """
    try:
        analysis = compiled.cost_analysis()
    except Exception:  # some backends do not implement it
        return None
    if analysis is None:
        return None
    if isinstance(analysis, dict):
        analysis = [analysis]
    total = 0.0
    found = False
    for entry in analysis:
        if entry and "flops" in entry:
            total += float(entry["flops"])
            found = True
    return total if found else None


# ----------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table on stdout: rich when it is installed, plain aligned text otherwise."""
    rows = [[_fmt(v) for v in row] for row in rows]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(c)), *(len(r[i]) for r in rows)) if rows else len(str(c)) for i, c in enumerate(columns)]
        print(title)
        print("  ".join(str(c).rjust(w) for c, w in zip(columns, widths)))
        for r in rows:
            print("  ".join(v.rjust(w) for v, w in zip(r, widths)))
        return
    table = Table(title=title)
    for c in columns:
        table.add_column(str(c), justify="right")
    for r in rows:
        table.add_row(*r)
    Console(width=max(100, min(200, 18 * len(columns)))).print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1e5:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        if abs(value) >= 1:
            return f"{value:.3g}" if abs(value) < 10 else f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def write_results(
    path: Path | None,
    benchmark: str,
    settings: dict[str, Any],
    rows: list[dict[str, Any]],
    started: float,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the JSON results file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "benchmark": benchmark,
        "command": command_line(),
        "quick": bool(settings.get("quick", False)),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "wall_time_s": round(time.time() - started, 2),
        "load_average_at_start": _LOAD_AT_START,
        "machine": machine_info(),  # its load_average_1_5_15 is taken at the end of the run
        "settings": settings,
        "rows": rows,
    }
    if extra:
        data.update(extra)
    path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    print(f"wrote {path}")
    return path


def _json_default(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


_LOAD_AT_START: list[float] | None = None


def header(benchmark: str, quick: bool) -> None:
    """Print one line about the machine; remember the load average; warn when the machine is busy."""
    global _LOAD_AT_START
    info = machine_info()
    _LOAD_AT_START = info["load_average_1_5_15"]
    print(
        f"{benchmark}: jax {info['jax_version']} on {info['backend']} ({info['device_kind']}), "
        f"{info['cpu_count']} CPUs, load {info['load_average_1_5_15']}{'  [--quick: smoke-test sizes]' if quick else ''}",
        flush=True,
    )
    cpus = info["cpu_affinity"] or info["cpu_count"] or 1
    if not quick and _LOAD_AT_START and _LOAD_AT_START[0] > 0.5 * cpus:
        print(
            f"warning: 1-minute load average {_LOAD_AT_START[0]} on {cpus} CPUs: other processes compete for "
            f"the CPU and the numbers will be slower and noisier than on an idle machine",
            flush=True,
        )


class EpochProgram:
    """One compiled training epoch (`Trainer.epoch`) with its state carried (donated) from call to call.

    Compile times of `init` and `epoch` are measured ahead of time (`init_compile_s`, `epoch_compile_s`);
    `sample(k)` times k epochs and records seconds per epoch and the load average.
    """

    def __init__(self, config: Any):
        from deepcrl import programs

        self.config = config
        self.trainer = programs.Trainer(config)
        key = programs.run_keys(config)[0]
        start = time.perf_counter()
        init = self.trainer.init.lower(key).compile()
        self.init_compile_s = time.perf_counter() - start
        start = time.perf_counter()
        self.state = jax.block_until_ready(init(key))  # prefill: prefill_steps steps of every environment
        self.init_run_s = time.perf_counter() - start
        start = time.perf_counter()
        self.epoch = self.trainer.epoch.lower(self.state).compile()
        self.epoch_compile_s = time.perf_counter() - start
        self.metrics = None
        self.times: list[float] = []  # seconds per epoch, one per sample
        self.loads: list[list[float] | None] = []

    def run(self, epochs: int) -> None:
        for _ in range(epochs):
            self.state, self.metrics = self.epoch(self.state)
        jax.block_until_ready((self.state, self.metrics))

    def sample(self, epochs: int) -> None:
        start = time.perf_counter()
        self.run(epochs)
        self.times.append((time.perf_counter() - start) / epochs)
        self.loads.append(load_average())
