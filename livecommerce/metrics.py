"""Prometheus metrics endpoint of a process (prometheus-client).

Every long-running process (worker, gateway, sink) calls :func:`serve_metrics` with its own port
so that one scrape config covers the stack.
"""

from __future__ import annotations

from prometheus_client import start_http_server

from livecommerce.logs import get_logger

log = get_logger(__name__)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics on ``host:port``; port 0 disables it."""
    if port <= 0:
        return
    start_http_server(port, addr=host)
    log.info("metrics_listening", url=f"http://{host}:{port}/metrics")
