"""What issue 'CRL on long horizons' added to training: best-of-K action selection while collecting and
evaluating (--explore-action-samples, --eval-action-samples), --chain-goals, TD3's preactivation penalty."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from deepcrl import Config, ConfigError, Trainer
from deepcrl.build import validate
from deepcrl.evaluate import evaluation_policy


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(eval_action_samples=-1), "eval_action_samples=-1 is not allowed; use 0"),
        (dict(explore_action_samples=-2), "explore_action_samples=-2 is not allowed; use 0"),
        (dict(agent="gcbc", eval_action_samples=8), "eval_action_samples=8 is not allowed with --agent gcbc"),
        (dict(agent="td3", explore_action_samples=2), "explore_action_samples=2 is not allowed with --agent td3"),
        (dict(agent="crl", preactivation_penalty=1.0), "preactivation_penalty=1.0 is not allowed with --agent crl"),
        (dict(agent="td3", preactivation_penalty=-1.0), "preactivation_penalty=-1.0 is not allowed; it must be a number >= 0"),
    ],
)
def test_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(Config(**overrides))


def test_allowed_settings_validate():
    for overrides in (
        dict(eval_action_samples=16, explore_action_samples=4),
        dict(agent="sac", eval_action_samples=4),
        dict(agent="gcbc", eval_action_samples=1, chain_goals=True),
        dict(agent="td3", preactivation_penalty=1.0),
    ):
        validate(Config(**overrides))


def test_training_collects_and_evaluates_with_best_of_k(small_run, compile_fast):
    config = Config(
        **dict(small_run, explore_action_samples=4, eval_action_samples=4, chain_goals=True, total_env_steps=16 * 25 * 2, tensorboard=False)
    )
    trainer = Trainer(config)
    state = trainer.init(jax.random.PRNGKey(0))
    state, metrics = trainer.epoch(state)
    assert int(metrics["health/first_bad_step"]) == -1
    m = jax.device_get(trainer.evaluate(state, jax.random.PRNGKey(1)))
    assert 0.0 <= float(m["eval/success"]) <= 1.0 and np.isfinite(float(m["eval/final_distance"]))
    # The evaluation policy is the best of 4 policy samples by the critic.
    params = state.agent.export()
    obs = jax.vmap(trainer.env.observation)(jax.vmap(trainer.env.eval_reset)(jax.random.split(jax.random.PRNGKey(2), 32)))
    key = jax.random.PRNGKey(3)
    best, _ = trainer.agent.best_of_samples(params["actor_params"], params["critic_params"], obs, key, 4)
    np.testing.assert_array_equal(evaluation_policy(trainer.agent, params, 4)(obs, key), best)
    assert not np.allclose(best, trainer.agent.act(params["actor_params"], obs, deterministic=True))
