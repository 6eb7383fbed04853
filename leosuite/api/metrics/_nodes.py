"""The nodes' series of a scrape: whether each node this daemon knows of is up, and
how long ago its heartbeat last moved."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from ...cluster.nodes import NodeDirectory

__all__ = ["node_metrics"]


def node_metrics(nodes: NodeDirectory | None) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "leosuite_node_up",
        "1 while the node heartbeats within node.heartbeat_timeout, else 0",
        labels=["node"],
    )
    age = GaugeMetricFamily(
        "leosuite_node_heartbeat_age_seconds",
        "Seconds since the node's heartbeat last moved, as this daemon saw it",
        labels=["node"],
    )
    for view in [] if nodes is None else nodes.list():
        up.add_metric([view.name], 1 if view.state == "up" else 0)
        if math.isfinite(view.heartbeat_age):
            age.add_metric([view.name], view.heartbeat_age)
    yield up
    yield age
