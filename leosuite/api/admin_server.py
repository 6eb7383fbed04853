"""Admin REST API (seed 002): the `server` routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .admin import AdminRoutes

__all__ = ["register"]


def register(routes: AdminRoutes) -> None:
    """Add this module's paths to the admin app (being written)."""
