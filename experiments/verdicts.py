"""Every verdict of docs/findings.md, computed from the kept runs by one rule (deepcrl.viz.compare).

experiments/verdicts.yaml lists the comparisons: for each, the kept results it reads (folders under
experiments/results), the two settings A and B (the paper's claim: A beats B), and the metric. This
script finds each side's runs, computes mean(A) - mean(B) with its 95% Welch interval over seeds, the
verdict, and prints the table that docs/findings.md carries between its `verdicts` markers (a test
checks the two agree, so the docs cannot drift from the data).

    python experiments/verdicts.py                 # the table
    python experiments/verdicts.py --write-docs    # also put it into docs/findings.md
    python experiments/verdicts.py --json experiments/results/verdicts.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "experiments" / "verdicts.yaml"
RESULTS = ROOT / "experiments" / "results"
DOC = ROOT / "docs" / "findings.md"
BEGIN, END = "<!-- verdicts:begin (experiments/verdicts.py writes this table) -->", "<!-- verdicts:end -->"


def _matches(settings: dict[str, Any], want: dict[str, Any]) -> bool:
    return all(k in settings and settings[k] == v for k, v in want.items())


def select(groups, want: dict[str, Any], where: str):
    """The one group whose settings hold every key = value of `want` (a ValueError names the candidates)."""
    found = [g for g in groups if _matches(g.settings, want)]
    if len(found) != 1:
        labels = "; ".join(g.label for g in (found or groups))
        raise ValueError(f"{where}: {want} matches {len(found)} settings, not one (of: {labels})")
    return found[0]


def compute(spec: dict[str, Any], results: Path = RESULTS) -> list[dict[str, Any]]:
    """One row per comparison of `spec`: both sides' scores, the difference, its interval, the verdict."""
    from deepcrl.viz.compare import difference, verdict
    from deepcrl.viz.runs import LEARNER_FIELDS, group_runs, load_runs

    cache: dict[tuple[str, ...], list] = {}
    rows = []
    for item in spec["verdicts"]:
        folders = tuple(item["results"]) if isinstance(item["results"], list) else (item["results"],)
        if folders not in cache:
            cache[folders] = group_runs(load_runs([results / f for f in folders]), ignore=LEARNER_FIELDS)
        groups = cache[folders]
        metric = item.get("metric", "eval/success")
        where = f"verdict {item['finding']} ({item['testbed']})"
        a, b = select(groups, item["a"], where + ", side A"), select(groups, item["b"], where + ", side B")
        _, _, scores_a = a.final(metric)
        _, _, scores_b = b.final(metric)
        d = difference(scores_a, scores_b)
        rows.append(
            {
                "finding": str(item["finding"]),
                "testbed": item["testbed"],
                "claim": item["claim"],
                "a": item.get("a_text", a.label),
                "b": item.get("b_text", b.label),
                "metric": metric,
                "a_scores": [round(float(v), 4) for v in scores_a],
                "b_scores": [round(float(v), 4) for v in scores_b],
                "mean_a": round(d.mean_a, 4),
                "se_a": round(d.se_a, 4),
                "mean_b": round(d.mean_b, 4),
                "se_b": round(d.se_b, 4),
                "diff": round(d.diff, 4),
                "low": round(d.low, 4),
                "high": round(d.high, 4),
                "seeds": [d.n_a, d.n_b],
                "verdict": verdict(d),
                "text": d.text(),
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| # | the claim (A beats B) | testbed | A | B | A: mean ± s.e. | B: mean ± s.e. | A − B [95% interval] | seeds | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['finding']} | {r['claim']} | {r['testbed']} | {r['a']} | {r['b']} | {r['mean_a']:.2f} ± {r['se_a']:.2f} | "
            f"{r['mean_b']:.2f} ± {r['se_b']:.2f} | {r['text']} | {r['seeds'][0]} / {r['seeds'][1]} | **{r['verdict']}** |"
        )
    return "\n".join(lines)


def load_spec(path: Path = SPEC) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


def doc_table(text: str) -> str | None:
    """The table between the markers of a doc's text, or None if it has no markers."""
    m = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.S)
    return m.group(1).rstrip("\n") if m else None


def write_doc(table: str, path: Path = DOC) -> None:
    text = path.read_text()
    if doc_table(text) is None:
        raise SystemExit(f"{path} has no {BEGIN!r} ... {END!r} markers to write the table between")
    new = re.sub(re.escape(BEGIN) + r"\n.*?" + re.escape(END), lambda _: f"{BEGIN}\n{table}\n{END}", text, flags=re.S)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=SPEC, help="the comparisons (default experiments/verdicts.yaml)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--write-docs", action="store_true", help="put the table into docs/findings.md between its markers")
    args = parser.parse_args(argv)
    try:
        rows = compute(load_spec(args.spec))
    except (ValueError, OSError) as e:
        print(f"verdicts: {e}", file=sys.stderr)
        return 2
    table = markdown(rows)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    if args.write_docs:
        write_doc(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
