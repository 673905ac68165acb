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


def read_user_text(path: str, what: str, hint: str = "") -> str:
    """The UTF-8 text of a file the user named (`~` expanded); ConfigError, one line naming it as
    `what` ("config file", "maze file") and why it cannot be read, with `hint` appended, otherwise."""
    import os

    try:
        with open(os.path.expanduser(path), "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path!r} does not exist{hint}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path!r} is a directory, not a file{hint}") from None
    except (OSError, ValueError) as e:  # permissions, a NUL in the name, ...
        reason = getattr(e, "strerror", None) or type(e).__name__
        raise ConfigError(f"{what} {path!r} cannot be read ({reason}){hint}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {path!r} is not UTF-8 text (byte {e.start}){hint}") from None
