"""The shape of the package (docs/architecture.md): layers imported one way, no import cycles, no
module over 400 lines, nothing importing the command line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "deepcrl"
MAX_LINES = 400

# Each module's layer; a module may import modules of its own layer or lower ones only.
LAYERS = [
    ("settings", ["_version", "errors", "config", "config_files", "presets"]),
    ("building blocks", ["networks", "losses", "replay", "envs", "parallel", "estimate", "compile_cache"]),
    ("task + agent", ["agents", "build"]),
    ("programs", ["evaluate", "health", "metrics", "programs"]),
    ("host loop", ["checkpoints", "logger", "progress", "run_dir", "loop"]),
    ("tools", ["dry_run", "render", "analysis"]),
    ("experiments", ["sweep", "viz"]),
    ("command line", ["cli"]),
]
RANK = {top: i for i, (_, tops) in enumerate(LAYERS) for top in tops}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(("deepcrl",) + (parts[:-1] if parts[-1] == "__init__" else parts))
        out[name] = path
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """deepcrl modules `path` imports, anywhere in the file (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("deepcrl"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("deepcrl") and node.level == 0:
            for a in node.names:  # `from deepcrl import replay` imports the module deepcrl.replay
                found.add(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module)
    return {m for m in found if m in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _rank(module: str) -> int:
    parts = module.split(".")
    return len(LAYERS) if len(parts) == 1 else RANK[parts[1]]  # the package's __init__: above everything


def _layer(module: str) -> str:
    return "the package" if _rank(module) == len(LAYERS) else LAYERS[_rank(module)][0]


def test_every_module_has_a_layer():
    missing = sorted({m.split(".")[1] for m in _modules() if m != "deepcrl"} - set(RANK))
    assert not missing, f"add {missing} to LAYERS here and to docs/architecture.md"


def test_imports_flow_one_way():
    wrong = [
        f"{m} ({_layer(m)}) imports {d} ({_layer(d)})"
        for m, deps in _graph().items()
        for d in deps
        if m != "deepcrl" and _rank(d) > _rank(m)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    graph, state, cycles = _graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # A package's __init__ re-exporting its submodules, which import each other, is not a cycle.
    cycles = [c for c in cycles if not all(m == c[0] or m.startswith(c[0] + ".") for m in c)]
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_nothing_imports_the_command_line():
    assert [m for m, deps in _graph().items() if "deepcrl.cli" in deps and not m.startswith("deepcrl.cli")] == []


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES
