"""leosuite: supervises game and application servers and hosts their community."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("leosuite")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = ["__version__"]
