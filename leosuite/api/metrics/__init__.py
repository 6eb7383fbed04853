"""Prometheus metrics and health endpoints: :class:`DaemonMetrics` (one daemon's own
registry), request counting, ``/metrics``, ``/healthz`` and ``/readyz``."""

from ._registry import DaemonMetrics as DaemonMetrics
from ._views import add_health_routes as add_health_routes
from ._views import count_requests as count_requests
from ._views import metrics_view as metrics_view
from ._views import readiness as readiness

__all__ = ["DaemonMetrics", "add_health_routes", "count_requests", "metrics_view", "readiness"]
