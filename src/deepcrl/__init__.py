"""deepcrl: Contrastive RL with very deep residual networks, in JAX.

import deepcrl
result = deepcrl.train(deepcrl.Config(env="point_u_maze", depth=8))
policy = deepcrl.load_policy(result.run_dir)   # jitted: observation -> action
"""

from deepcrl._version import __version__
from deepcrl.build import Setup, prepare, validate
from deepcrl.checkpoints import load_policy
from deepcrl.config import Config
from deepcrl.errors import ConfigError
from deepcrl.loop import RunResult, resume, train
from deepcrl.programs import Trainer

__all__ = ["__version__", "Config", "ConfigError", "RunResult", "Setup", "Trainer", "load_policy", "prepare", "resume", "train", "validate"]
