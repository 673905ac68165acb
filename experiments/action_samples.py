"""How a finished point-maze run's policy does from the start cell when it acts by its deterministic
mean, by one policy sample, or by the best of K samples chosen by its critic: a check of whether the
critic's preferences between nearby actions can be trusted (docs/findings.md, section C).

    python experiments/action_samples.py RUN_DIR [--episodes 32] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np


def main(argv: list[str] | None = None) -> int:
    from deepcrl.checkpoints.policy import load_policy_checkpoint, seed_payload
    from deepcrl.evaluate import evaluation_policy, run_episodes

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--samples", default="0,1,8", help="0: the mean; 1: one sample; K >= 2: the best of K by the critic")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    config, env, agent, payload = load_policy_checkpoint(args.run_dir)
    rows = []
    for i in range(config.num_seeds):
        params = seed_payload(config, payload, config.seed + i)
        for k in (int(v) for v in args.samples.split(",")):
            policy = evaluation_policy(agent, params, k)
            episodes = jax.jit(lambda key: run_episodes(env, policy, key, args.episodes, policy_takes_key=k > 0))
            _, _, stats, _ = episodes(jax.random.PRNGKey(0))
            rows.append({"seed": config.seed + i, "samples": k, "success": round(float(np.mean(stats["ever"])), 4)})
            print(f"seed {config.seed + i}, samples {k}: success {rows[-1]['success']:.2f} of {args.episodes} episodes")
    if args.json:
        args.json.write_text(json.dumps({"run": str(args.run_dir), "episodes": args.episodes, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
