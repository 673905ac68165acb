"""deepcrl plot: figures from a fixture of small run directories (written the way a run writes them:
config.json, metrics.csv through the MetricsLogger, a policy checkpoint), with known values, so each
figure's curves, points, means and standard errors can be checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_error_line, run_main
from flax import serialization

from deepcrl.config import Config
from deepcrl.logger import MetricsLogger
from deepcrl.viz import group_runs, load_runs
from deepcrl.viz.figures import figures_for

EVALS = 6
STEPS = 1000


def success(depth: int, batch: int, seed: int, i: int) -> float:
    """A known curve: rises with the evaluation, higher for deeper networks, offset by the seed."""
    return min(1.0, (i + 1) / EVALS * depth / 8 + 0.01 * batch / 64 + 0.02 * seed)


def write_run(
    run_dir: Path,
    depth: int,
    batch: int,
    seeds: list[int],
    agent: str = "crl",
    params: int = 100,
    learner_depth: int | None = None,
    **settings,
) -> None:
    config = Config(
        **settings,
        learner_depth=learner_depth,
        env="point_open",
        depth=depth,
        batch_size=batch,
        seed=seeds[0],
        num_seeds=len(seeds),
        agent=agent,
        her=agent == "sac",
        run_dir=str(run_dir),
    )
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(config.to_json())
    logger = MetricsLogger(run_dir, tensorboard=False)
    for i in range(EVALS):
        row = {"epoch": i + 1, "env_steps": (i + 1) * STEPS, "sgd_steps": i + 1, "time_s": 2.0 * (i + 1)}
        values = {s: success(depth, batch, s, i) for s in seeds}
        names = [("eval/success", 1.0), ("eval/time_at_goal", 100.0), ("eval/time_at_goal_frac", 1.0)]
        if learner_depth is not None:  # the learner's columns: its own known curve, half the collector's
            names += [("learner/eval/success", 0.5), ("learner/eval/time_at_goal", 50.0)]
        for name, scale in names:
            if len(seeds) == 1:
                row[name] = scale * values[seeds[0]]
            else:
                row[name] = scale * float(np.mean(list(values.values())))
                row[name + "/se"] = 0.0
                for s in seeds:
                    row[f"{name}/seed{s}"] = scale * values[s]
        logger.log(row, step=row["env_steps"])
    logger.close()
    payload = {
        "actor_params": {"w": np.zeros((len(seeds), params), np.float32)},
        "critic_params": {"w": np.zeros((len(seeds), depth), np.float32)},
    }
    (run_dir / "checkpoint").mkdir()
    (run_dir / "checkpoint" / "agent.msgpack").write_bytes(serialization.to_bytes(payload))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A depth x batch grid of CRL runs (depth 4 and 8, batch 64 and 128), seeds 0-1 batched in one run
    for batch 64 and one run per seed for batch 128, plus SAC+HER at depth 4 and 8, batch 64."""
    root = tmp_path_factory.mktemp("runs")
    for depth in (4, 8):
        write_run(root / f"crl-d{depth}-b64", depth, 64, [0, 1])
        for seed in (0, 1):
            write_run(root / f"crl-d{depth}-b128-s{seed}", depth, 128, [seed])
        write_run(root / f"sac-d{depth}-b64", depth, 64, [0, 1], agent="sac")
    return root


def test_runs_differing_only_in_seed_are_pooled(runs):
    groups = {g.label: g for g in group_runs(load_runs([runs]))}
    assert set(groups) == {f"agent {a}, depth {d}, batch size {b}" for d in (4, 8) for b, a in ((64, "crl"), (128, "crl"), (64, "sac+her"))}
    g = groups["agent crl, depth 8, batch size 128"]
    assert g.num_seeds == 2 and len(g.runs) == 2
    mean, se, per_seed = g.final("eval/success")
    expected = [np.mean([success(8, 128, s, i) for i in range(EVALS - 5, EVALS)]) for s in (0, 1)]
    np.testing.assert_allclose(per_seed, expected)
    assert mean == pytest.approx(np.mean(expected)) and se == pytest.approx(np.std(expected, ddof=1) / np.sqrt(2))


def test_every_figure_has_its_curves_and_points(runs):
    figures = {info.name: (fig, info) for fig, info in figures_for(group_runs(load_runs([runs])))}
    curves = figures["curves_success_vs_steps"]
    assert len(curves[0].axes[0].get_lines()) == 6 and set(curves[1].curves.values()) == {EVALS}
    scaling = figures["scaling_success_vs_depth"][1]
    assert scaling.curves == {"agent crl, batch size 64": 2, "agent crl, batch size 128": 2, "agent sac+her, batch size 64": 2}
    assert figures["scaling_time_at_goal_vs_batch_size"][1].curves == {
        "agent crl, depth 4": 2,
        "agent crl, depth 8": 2,
        "agent sac+her, depth 4": 1,  # SAC+HER ran at one batch size
        "agent sac+her, depth 8": 1,
    }
    assert figures["scaling_success_vs_params"][1].curves == {"agent crl": 4, "agent sac+her": 2}
    heat = figures["heatmap_success_depth_x_batch_size"]
    assert heat[1].curves == {"agent crl": 4, "agent sac+her": 2}
    # each cell is annotated with its mean +- s.e.: the CRL depth 8 batch 128 cell reads its final score
    texts = [t.get_text() for t in heat[0].axes[0].texts]
    final = np.mean([success(8, 128, s, i) for s in (0, 1) for i in range(EVALS - 5, EVALS)])
    assert any(t.startswith(f"{final:.2f}") for t in texts)
    assert "paper_ant_big_maze" not in figures


def test_a_depth_sweep_whose_runs_carry_learners_is_a_depth_sweep_and_a_collector_learner_grid(tmp_path):
    """Runs with learners of other depths (depth 4 with a depth-16 learner, depth 8 alone, depth 16 with a
    depth-4 learner): the collector's scaling pools over the learner (one line, three depths); the
    learner's figures use only the runs that have one, by depth x learner depth."""
    for depth, learner in ((4, 16), (8, None), (16, 4)):
        write_run(tmp_path / f"d{depth}", depth, 64, [0, 1, 2], learner_depth=learner)
    figures = {info.name: info for _, info in figures_for(group_runs(load_runs([tmp_path])))}
    assert figures["scaling_success_vs_depth"].curves == {"crl": 3}
    assert figures["curves_success_vs_steps"].curves == {f"depth {d}": EVALS for d in (4, 8, 16)}
    assert figures["curves_learner_success_vs_steps"].curves == {"depth 4, learner depth 16": EVALS, "depth 16, learner depth 4": EVALS}
    assert figures["heatmap_learner_success_depth_x_learner_depth"].curves == {"all": 2}
    assert "scaling_success_vs_learner_depth" not in figures and "heatmap_success_depth_x_learner_depth" not in figures
    # the paper's 2 x 2 (here 3 x 3, five cells): the collectors' own scores on the diagonal, the learners' off it
    fig, info = next((f, i) for f, i in figures_for(group_runs(load_runs([tmp_path]))) if i.name == "collector_learner_success")
    assert info.curves == {"all": 5}
    texts = [t.get_text() for t in fig.axes[0].texts]
    own = np.mean([success(4, 64, s, i) for s in (0, 1, 2) for i in range(EVALS - 5, EVALS)])
    assert f"{own:.2f}" in " ".join(texts) and f"{0.5 * own:.2f}" in " ".join(texts)


def test_runs_that_set_actor_and_critic_depths_are_compared_by_both(tmp_path):
    """An actor x critic grid whose diagonal is a plain depth sweep (--depth 4, --depth 16) and whose other
    cells set --actor-depth and --critic-depth: one heatmap of actor depth x critic depth, four cells."""
    for depth in (4, 16):
        write_run(tmp_path / f"d{depth}", depth, 64, [0, 1, 2])
    for actor, critic in ((4, 16), (16, 4)):
        write_run(tmp_path / f"a{actor}c{critic}", 8, 64, [0, 1, 2], actor_depth=actor, critic_depth=critic)
    groups = group_runs(load_runs([tmp_path]))
    assert sorted(g.label for g in groups) == [f"actor depth {a}, critic depth {c}" for a, c in ((16, 16), (16, 4), (4, 16), (4, 4))]
    figures = {info.name: info for _, info in figures_for(groups)}
    assert figures["heatmap_success_actor_depth_x_critic_depth"].curves == {"all": 4}
    assert "scaling_success_vs_depth" not in figures


def test_plot_writes_png_svg_and_an_index(runs, tmp_path, capsys):
    out = tmp_path / "figures"
    code, text, err = run_main(["plot", str(runs), "--out", str(out), "--paper", "ant_big_maze"], capsys)
    assert code == 0, err
    listing = json.loads((out / "figures.json").read_text())
    names = [f["name"] for f in listing["figures"]]
    assert len(names) == 4 + 2 * (2 + 1 + 1) + 1  # curves; per metric: 2 sizes, params, one heatmap; the paper's
    for f in listing["figures"]:
        for path in f["files"]:
            assert Path(path).stat().st_size > 1000, path
        assert f["question"]
    paper = next(f for f in listing["figures"] if f["name"] == "paper_ant_big_maze")
    assert paper["curves"]["paper depth 64"] == 100 and sum(k.startswith("deepcrl") for k in paper["curves"]) == 6
    assert (out / "paper_ant_big_maze.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    "argv, names", [(["nowhere"], ["'nowhere'", "does not exist"]), (["RUNS", "--paper", "ant_tiny"], ["--paper 'ant_tiny'", "humanoid"])]
)
def test_bad_plot_input_is_one_line_and_writes_nothing(argv, names, runs, tmp_path, capsys):
    out = tmp_path / "figures"
    code, _, err = run_main(["plot", *[str(runs) if a == "RUNS" else a for a in argv], "--out", str(out)], capsys)
    assert_one_error_line(code, err, *names)
    assert not out.exists()
