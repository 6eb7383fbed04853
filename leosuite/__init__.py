"""leosuite: supervises game and application servers and hosts their community."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # The version is read from the installed metadata on first use: importing
    # importlib.metadata costs every process (a server's demo game too) tens of ms.
    if name != "__version__":
        raise AttributeError(f"module 'leosuite' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("leosuite")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        found = "0.0.0"
    globals()["__version__"] = found
    return found
