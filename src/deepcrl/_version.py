"""The installed version of deepcrl (`deepcrl --version`, `deepcrl.__version__`)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deepcrl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"
