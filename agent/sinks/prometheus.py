"""Prometheus node_exporter textfile collector sink.

The file is replaced atomically (write ``NAME.prom.PID.tmp`` in the same directory, fsync,
rename): node_exporter's textfile collector reads ``*.prom`` only, and a rename never exposes a
half-written file (node_exporter README, "Textfile Collector": "write to a temporary file and
rename"). Names follow blackbox_exporter (``probe_success``, ``probe_duration_seconds``,
``probe_dns_lookup_time_seconds``) so existing alert rules and dashboards fit.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from s3_route_agent.sinks.base import Sink
from s3_route_agent.statefile import replace_file
from s3_route_agent.sinks.emf import _transfer_seconds

logger = logging.getLogger(__name__)

_STATUS_VALUE = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}


def _label(value: Any) -> str:
    """A label value escaped per the text exposition format (backslash, quote, newline)."""
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def prometheus_text(report: dict[str, Any]) -> str:
    """The report in the Prometheus text exposition format (version 0.0.4)."""
    families: dict[str, tuple[str, str, list[str]]] = {}

    def add(name: str, kind: str, help_text: str, labels: str, value: float) -> None:
        families.setdefault(name, (kind, help_text, []))[2].append(f"{name}{labels} {value:g}")

    for t in report.get("targets") or []:
        lab = _labels(target=t.get("name"), host=t.get("host"), expected=t.get("expect"))
        add("probe_success", "gauge", "1 when the target's path is the expected one",
            lab, 1 if t.get("status") == "OK" else 0)
        add("probe_path_info", "gauge", "the path traffic to the target takes (value always 1)",
            _labels(target=t.get("name"), host=t.get("host"), expected=t.get("expect"),
                    path=t.get("path"), status=t.get("status")), 1)
        dns = t.get("dns") or {}
        if isinstance(dns.get("latency_ms"), (int, float)):
            add("probe_dns_lookup_time_seconds", "gauge", "DNS lookup time of the target",
                _labels(target=t.get("name")), float(dns["latency_ms"]) / 1000.0)
        transfer = _transfer_seconds(t)
        if transfer is not None:
            add("probe_transfer_duration_seconds", "gauge", "test transfer time of the target",
                _labels(target=t.get("name")), transfer)
    add("probe_duration_seconds", "gauge", "how long the whole check took", "",
        float(report.get("duration_ms") or 0) / 1000.0)
    add("s3_route_agent_status", "gauge", "overall Nagios status: 0 OK 1 WARNING 2 CRITICAL "
        "3 UNKNOWN", "", _STATUS_VALUE.get(str(report.get("status")), 3))
    facts = report.get("facts") or {}
    add("s3_route_agent_ec2_calls", "gauge", "EC2 API calls the last check made", "",
        float(facts.get("ec2_calls") or 0))
    if isinstance(facts.get("inventory_age_seconds"), (int, float)):
        add("s3_route_agent_inventory_age_seconds", "gauge", "age of the EC2 facts used", "",
            float(facts["inventory_age_seconds"]))
    from s3_route_agent.sinks.cloudwatch_logs import report_timestamp_ms
    add("s3_route_agent_last_run_timestamp_seconds", "gauge", "when the last check ran", "",
        report_timestamp_ms(report) / 1000.0)
    lines: list[str] = []
    for name, (kind, help_text, samples) in families.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(samples)
    return "\n".join(lines) + "\n"


class PrometheusTextfileSink(Sink):
    """Replaces ``path`` (a ``.prom`` file) with the latest report's metrics."""

    name = "prometheus"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Write to ``path``; its directory is created when missing."""
        self.path = Path(path)
        if self.path.suffix != ".prom":
            logger.warning("%s does not end in .prom: node_exporter's textfile collector "
                           "ignores it", self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, report: dict[str, Any]) -> None:
        """Atomically replace the file with this report's metrics."""
        # 0644: node_exporter usually runs as another user.
        replace_file(self.path, prometheus_text(report), mode=0o644)
