"""The collector / learner split (--learner-depth, the paper's finding 8): a second agent with other
networks learns only from the run's buffer. It never collects: the run's data, its collector and its
collector's metrics are bit for bit those of the same run without a learner, and the learner's
metrics and evaluation are logged beside them as learner/... columns."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from test_resume import TINY_SETTINGS

from deepcrl import Config
from deepcrl.errors import ConfigError
from deepcrl.loop import train
from deepcrl.programs import Trainer, run_keys

SETTINGS = {**TINY_SETTINGS, "total_env_steps": 2400, "num_evals": 3, "progress": False, "tensorboard": False}  # 30 epochs
LEARNER = {"learner_depth": 8, "learner_width": 32}  # both tests: the same programs (compiled once, then from the cache)
pytestmark = pytest.mark.xdist_group("collector_learner")  # one worker: the second test reads the first's compiles


def _size(tree) -> int:
    return sum(x.size for x in jax.tree.leaves(tree))


def _equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_the_learner_never_collects_and_learns_from_exactly_the_collectors_transitions(compile_fast):
    plain, split = Trainer(Config(**SETTINGS)), Trainer(Config(**SETTINGS, **LEARNER))
    key = run_keys(plain.config)[0]
    a, b = plain.init(key), split.init(key)
    for _ in range(3):
        a, metrics_a = plain.epoch(a)
        b, metrics_b = split.epoch(b)
    # the same transitions, the same environments, the same collector: nothing of the learner reaches them
    assert _equal(a.buffer, b.buffer) and _equal(a.envs, b.envs) and _equal(a.agent, b.agent)
    assert int(b.buffer.count) > 0 and a.learner is None
    for name, value in metrics_a.items():
        assert np.array_equal(value, metrics_b[name]), name
    learner = {k.removeprefix("learner/") for k in metrics_b if k.startswith("learner/")}
    assert learner == {k for k in metrics_a if not k.startswith(("collect/", "health/"))}  # it learns; it does not collect
    assert not np.array_equal(metrics_b["learner/critic/loss"], metrics_b["critic/loss"])
    # its own networks: depth 8, width 32, trained (no longer its initial parameters)
    learner_params = b.learner.export()
    assert _size(learner_params) > _size(b.agent.export())
    init = split.learner_agent.init(jax.random.fold_in(jax.random.split(key, 4)[0], 0x1EA)).export()
    assert not _equal(init, learner_params)
    evaluation = split.evaluate(b, run_keys(split.config)[1])
    assert {"eval/success", "learner/eval/success", "learner/eval/time_at_goal"} <= set(evaluation)


def test_a_collector_learner_run_logs_both_and_saves_the_learners_policy(tmp_path, capsys, compile_fast):
    result = train(Config(**SETTINGS, **LEARNER, run_dir=str(tmp_path / "run")))
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"eval/success", "learner/eval/success", "learner/critic/accuracy", "collect/success_rate"} <= set(header)
    assert not any(h.startswith("learner/collect/") for h in header)
    assert {"eval/success", "learner/eval/success"} <= set(result.final_score)
    stored = json.loads((tmp_path / "run" / "learner" / "checkpoint" / "config.json").read_text())
    assert (stored["depth"], stored["width"], stored["learner_depth"], stored["learner_width"]) == (8, 32, None, None)
    from deepcrl.checkpoints import load_policy_checkpoint

    config, _, _, payload = load_policy_checkpoint(tmp_path / "run" / "learner")
    assert config.depth == 8 and payload
    assert "learner" in capsys.readouterr().err  # the closing summary (on stderr) has a learner row


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"learner_depth": 6}, "learner_depth=6"),
        ({"learner_width": 32}, "without --learner-depth"),
        ({"learner_depth": 8, "learner_width": 0}, "learner_width=0"),
    ],
)
def test_bad_learner_settings_are_one_line_errors(changes, words):
    from deepcrl.build import prepare

    with pytest.raises(ConfigError, match=words):
        prepare(Config(**SETTINGS, **changes))
