"""Helpers shared by the command-line tests: run `deepcrl.cli.main` in-process and check its error line."""

from __future__ import annotations

import re

from deepcrl import cli


def run_main(argv, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `deepcrl ARGV` run in this process."""
    try:
        code = cli.main(argv)
    except SystemExit as e:  # tyro exits by itself for --help
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(code: int, err: str, *names: str) -> str:
    """Exit code 2 and exactly one `deepcrl: error:` line on stderr, mentioning every one of `names`."""
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("deepcrl: error: "), err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def dry_run_rows(out: str) -> dict[str, str]:
    """The `--dry-run` table's rows: label -> value (continuation lines of folded cells are skipped)."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows
