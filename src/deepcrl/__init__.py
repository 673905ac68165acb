"""deepcrl: Contrastive RL with very deep residual networks, in JAX.

    import deepcrl
    result = deepcrl.train(deepcrl.Config(env="point_u_maze", depth=8))
    policy = deepcrl.load_policy(result.run_dir)   # jitted: observation -> action
"""

from deepcrl.checkpoint import load_policy
from deepcrl.config import Config
from deepcrl.errors import ConfigError
from deepcrl.training import RunResult, Trainer, train

__all__ = ["Config", "ConfigError", "RunResult", "Trainer", "load_policy", "train"]
__version__ = "0.1.0"
