"""The two kinds of checkpoint a run writes (their folder names are kept from the first release):

- policy checkpoints, RUN_DIR/checkpoint/ (policy.py): a finished run's parameters and config, to act
  (`load_policy`), evaluate and render;
- training-state checkpoints, RUN_DIR/state/epoch_N/ (train_state.py): everything a run needs to go on
  exactly as if it had never stopped (`deepcrl train --resume`).
"""

from deepcrl.checkpoints.policy import POLICY_DIR, load_policy, load_policy_checkpoint, save_policy_checkpoint, seed_payload
from deepcrl.checkpoints.train_state import TRAIN_STATE_DIR, TrainStateWriter, list_train_states, restore_train_state, save_train_state

__all__ = [
    "POLICY_DIR",
    "TRAIN_STATE_DIR",
    "TrainStateWriter",
    "list_train_states",
    "load_policy",
    "load_policy_checkpoint",
    "restore_train_state",
    "save_policy_checkpoint",
    "save_train_state",
    "seed_payload",
]
