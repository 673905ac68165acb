"""Every `deepcrl train` command the README and docs show is one the program accepts: each runs with
--dry-run (validated, sizes derived, nothing written). Commands with placeholders (RUN_DIR, D, [...],
...) are shown as patterns, not commands, and are skipped; the flags of the benchmark scripts named in
benchmarks/README.md exist."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import run_main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDER = re.compile(r"\.\.\.|[\[\]{}]|RUN_DIR|\b[A-Z]\b|--help|--resume")


def documented_train_commands() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for match in re.finditer(r"deepcrl train[^`|#\n]*", doc.read_text()):
            command = match.group(0).strip()
            if not PLACEHOLDER.search(command) and command not in {c for _, c in found}:
                found.append((doc.name, command))
    return found


COMMANDS = documented_train_commands()


def test_the_docs_show_train_commands():
    assert len(COMMANDS) >= 20  # the extraction still finds them


@pytest.mark.xdist_group("documented-commands")
def test_every_documented_train_command_dry_runs(tmp_path, capsys, workdir):
    failed = []
    for i, (doc, command) in enumerate(COMMANDS):
        args = shlex.split(command)[2:]
        # a maze file of the repository, named from its root: the same file from here
        args = [f"maze:{ROOT / a[5:]}" if a.startswith("maze:") and (ROOT / a[5:]).is_file() else a for a in args]
        if "--run-dir" in args:  # a documented folder: dry-run into a temporary one instead
            at = args.index("--run-dir")
            del args[at : at + 2]
        if "--dry-run" not in args:
            args.append("--dry-run")
        code, _, err = run_main(["train", *args, "--run-dir", str(tmp_path / f"run{i}")], capsys)
        if code != 0:
            failed.append(f"{doc}: {command}: {err.strip()}")
    assert not failed, "\n".join(failed)
    assert [p.name for p in tmp_path.iterdir()] == ["cwd"] and list(workdir.iterdir()) == []  # nothing written


BENCHMARK_FLAGS = re.compile(r"`python benchmarks/(\w+)\.py([^`]*)`")


def test_benchmark_flags_in_the_readme_exist():
    text = (ROOT / "benchmarks" / "README.md").read_text()
    shown: dict[str, set[str]] = {}
    for script, args in BENCHMARK_FLAGS.findall(text):
        if not (ROOT / "benchmarks" / f"{script}.py").is_file():  # a pattern (benchmarks/NAME.py), not a script
            continue
        shown.setdefault(script, set()).update(re.findall(r"--[a-z][a-z0-9-]*", args))
    assert shown
    for script, flags in shown.items():
        help_text = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT
        ).stdout
        missing = sorted(f for f in flags if f not in help_text)
        assert not missing, f"benchmarks/{script}.py has no {missing}"


def documented_sweep_commands() -> list[tuple[str, str]]:
    found = []
    for doc in [*DOCS, *sorted((ROOT / "experiments").glob("*.yaml"))]:
        for match in re.finditer(r"deepcrl sweep[^`|#\n]*", doc.read_text()):
            command = match.group(0).strip()
            if not PLACEHOLDER.search(command) and "--status" not in command and command not in {c for _, c in found}:
                found.append((doc.name, command))
    return found


def test_every_documented_sweep_command_dry_runs(capsys, workdir, monkeypatch):
    commands = documented_sweep_commands()
    assert len(commands) >= 3
    failed = []
    # documented commands run from the repository root (sweep files name maze files relative to it)
    monkeypatch.chdir(ROOT)
    before = sorted(p.name for p in ROOT.iterdir())
    for doc, command in commands:
        args = [str(ROOT / a) if (ROOT / a).is_file() else a for a in shlex.split(command)[1:]]  # files of the repository
        code, _, err = run_main([*args, "--dry-run"], capsys)
        if code != 0:
            failed.append(f"{doc}: {command}: {err.strip()}")
    assert not failed, "\n".join(failed)
    assert list(workdir.iterdir()) == [] and sorted(p.name for p in ROOT.iterdir()) == before  # nothing written
