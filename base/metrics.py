"""Prometheus metrics endpoint of a process (prometheus-client).

Every long-running process (worker, gateway, sink) calls :func:`serve_metrics` with its own port
so that one scrape config covers the stack.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from base.logs import get_logger

log = get_logger(__name__)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on ``host:port``; port 0 disables it."""
    if port <= 0:
        return
    start_http_server(port, addr=host)
    log.info("metrics_listening", url=f"http://{host}:{port}/metrics")


class StatsCollector(Collector):
    """Exports a job's plain ``collections.Counter`` of statistics as Prometheus counters, read at scrape.

    Why: the hot loops keep their tallies in a dict (a Prometheus ``inc()`` per event would cost more
    than the work it counts); this collector turns them into ``<prefix>_<key>_total`` only when
    Prometheus asks.  Keys ending in ``_max`` or ``_s`` are exported as gauges.
    """

    def __init__(self, prefix: str, stats: Mapping[str, float], help_text: str) -> None:
        self.prefix = prefix
        self.stats = stats
        self.help_text = help_text

    def collect(self) -> Iterator[Metric]:
        for key, value in sorted(dict(self.stats).items()):
            name = f"{self.prefix}_{key}"
            if key.endswith(("_max", "_s")):
                yield GaugeMetricFamily(name, f"{self.help_text}: {key}", value=value)
            else:
                yield CounterMetricFamily(name, f"{self.help_text}: {key}", value=value)


def export_stats(prefix: str, stats: Mapping[str, float], help_text: str) -> StatsCollector:
    """Register ``stats`` with the default registry (once per process and prefix)."""
    collector = StatsCollector(prefix, stats, help_text)
    REGISTRY.register(collector)
    return collector
