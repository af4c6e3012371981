"""Report sinks: stdout, JSON Lines file, CloudWatch Logs, EMF metrics, Prometheus textfile.

Every enabled sink receives every report (:class:`FanOut`); one sink failing never keeps a
report from the others.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional

from s3_route_agent.config import AgentConfig
from s3_route_agent.report.document import Report
from s3_route_agent.sinks.base import Sink
from s3_route_agent.sinks.cloudwatch_logs import CloudWatchLogsSink
from s3_route_agent.sinks.emf import EmfSink
from s3_route_agent.sinks.jsonl import JsonLinesSink
from s3_route_agent.sinks.prometheus import PrometheusTextfileSink
from s3_route_agent.sinks.stdout import StdoutSink

logger = logging.getLogger(__name__)

__all__ = ["Sink", "FanOut", "build_sinks", "StdoutSink", "JsonLinesSink", "CloudWatchLogsSink",
           "EmfSink", "PrometheusTextfileSink"]


class FanOut:
    """Sends each report to every sink; a failing sink is logged and counted, the rest go on."""

    def __init__(self, sinks: list[Sink]) -> None:
        """Fan out to ``sinks`` in order."""
        self.sinks = list(sinks)
        self.failures: dict[str, int] = {s.name: 0 for s in self.sinks}

    def emit(self, report: Report) -> None:
        """Give ``report`` to every sink."""
        for sink in self.sinks:
            try:
                sink.emit(report)
            except Exception as exc:  # noqa: BLE001 - one sink must not starve the others
                self.failures[sink.name] = self.failures.get(sink.name, 0) + 1
                logger.error("sink %s failed: %s: %s", sink.name, type(exc).__name__, exc)

    def flush(self) -> None:
        """Flush every sink."""
        self._each("flush")

    def close(self, timeout: Optional[float] = None) -> None:
        """Close every sink (each flushes first), all of them within ``timeout`` seconds when
        given (the daemon's stop budget)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for sink in self.sinks:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                sink.close(left)
            except Exception as exc:  # noqa: BLE001
                self.failures[sink.name] = self.failures.get(sink.name, 0) + 1
                logger.error("sink %s close failed: %s: %s", sink.name, type(exc).__name__, exc)

    def _each(self, method: str) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)()
            except Exception as exc:  # noqa: BLE001
                logger.error("sink %s %s failed: %s: %s", sink.name, method,
                             type(exc).__name__, exc)


def build_sinks(config: AgentConfig, logs_client: Callable[[], Any]) -> FanOut:
    """The sinks ``config.outputs`` enables (stdout alone when none is); ``logs_client`` builds
    the CloudWatch Logs client (lazily, on the first send)."""
    out = config.outputs
    sinks: list[Sink] = []
    if out.file.path:
        sinks.append(JsonLinesSink(out.file.path, out.file.max_bytes, out.file.backups))
    if out.cloudwatch_logs.enabled:
        cw = out.cloudwatch_logs
        spool = cw.spool_dir or str(Path(config.state_dir) / "spool" / "cloudwatch-logs")
        sinks.append(CloudWatchLogsSink(logs_client, cw.log_group, cw.log_stream, spool,
                                        cw.spool_max_bytes, cw.create, cw.retry_max_seconds,
                                        cw.stop_flush_seconds))
    if out.emf.enabled:
        sinks.append(EmfSink(out.emf.namespace, out.emf.path, out.emf.max_bytes, out.emf.backups))
    if out.prometheus.path:
        sinks.append(PrometheusTextfileSink(out.prometheus.path))
    if out.stdout or not sinks:
        sinks.insert(0, StdoutSink())
    return FanOut(sinks)
