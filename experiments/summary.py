"""The numbers behind docs/findings.md: one table row per setting of the runs given (sweep folders, run
folders), seeds pooled as `deepcrl plot` pools them, with each setting's final score (each seed's mean of
its last 5 evaluations; mean ± standard error over seeds), the per-seed values and the wall clock.

    python experiments/summary.py sweeps/serpentine_depth [--json experiments/results/serpentine_depth.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = ("eval/success", "eval/time_at_goal", "learner/eval/success")


def summarise(paths: list[str]) -> list[dict]:
    from deepcrl.viz.runs import LEARNER_FIELDS, group_runs, load_runs

    runs = load_runs(paths)
    rows = []
    for learner in (False, True):
        groups = group_runs(runs) if learner else group_runs(runs, ignore=LEARNER_FIELDS)
        for g in groups:
            names = [m for m in METRICS if m.startswith("learner/") == learner and all(m in s for r in g.runs for s in r.seeds.values())]
            if not names:
                continue
            row = {
                "setting": g.label + (" (the learner)" if learner else ""),
                "seeds": g.num_seeds,
                "env_steps": int(g.runs[0].env_steps[-1]),
            }
            for m in names:
                mean, se, per_seed = g.final(m)
                row[m] = {"mean": round(mean, 4), "se": round(se, 4), "per_seed": [round(float(v), 4) for v in per_seed]}
            row["wall_clock_s"] = round(max(float(r.time_s[-1]) for r in g.runs), 1)
            rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| setting | success | per seed | time at goal | wall clock |", "|---|---|---|---|---|"]
    for row in rows:
        m = row.get("eval/success") or row["learner/eval/success"]
        t = row.get("eval/time_at_goal")
        per = " / ".join(f"{v:.2f}" for v in m["per_seed"])
        tg = f"{t['mean']:.1f} ± {t['se']:.1f}" if t else ""
        lines.append(f"| {row['setting']} | **{m['mean']:.2f} ± {m['se']:.2f}** | {per} | {tg} | {row['wall_clock_s']:.0f} s |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="sweep folders or run folders")
    parser.add_argument("--json", help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = summarise(args.paths)
    print(markdown(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
