"""The one exception type that bad user input raises.

Every check of a user-supplied value raises `ConfigError` with a single line that names the bad value
and says what is allowed. The command line turns it into that line on stderr and exit code 2.
"""


class ConfigError(ValueError):
    """A user-supplied value is not allowed. The message is one line: the value and what is allowed."""


class RunError(RuntimeError):
    """A run failed while training (not because of its input). One line: what happened, what was kept."""


class NumericalError(RunError):
    """A loss, gradient or parameter became NaN or Inf during training. One line: what, and at which step."""


class CheckpointWriteError(RunError):
    """A checkpoint could not be written (disk full, folder removed, ...); the previous one is intact."""
