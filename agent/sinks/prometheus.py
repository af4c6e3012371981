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

from s3_route_agent.engine.model import Status
from s3_route_agent.report.document import Report
from s3_route_agent.sinks.base import Sink
from s3_route_agent.statefile import replace_file

logger = logging.getLogger(__name__)


def _label(value: Any) -> str:
    """A label value escaped per the text exposition format (backslash, quote, newline)."""
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def sample_value(value: float) -> str:
    """A sample value that parses back to exactly ``value``: Python's shortest round-trip
    ``repr`` of the float (Go's ParseFloat, which Prometheus uses, reads it), integers plain.
    ``{:g}`` keeps 6 significant digits and puts an epoch timestamp off by up to an hour."""
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 2 ** 53 else repr(number)


def prometheus_text(report: Report) -> str:
    """The report in the Prometheus text exposition format (version 0.0.4)."""
    families: dict[str, tuple[str, str, list[str]]] = {}

    def add(name: str, kind: str, help_text: str, labels: str, value: float) -> None:
        families.setdefault(name, (kind, help_text, []))[2].append(
            f"{name}{labels} {sample_value(value)}")

    for v in report.verdicts:
        name, host, expect = v.target.name, v.target.host, v.target.expect.value
        lab = _labels(target=name, host=host, expected=expect)
        add("probe_success", "gauge", "1 when the target's path is the expected one",
            lab, 1 if v.status is Status.OK else 0)
        add("probe_path_info", "gauge", "the path traffic to the target takes (value always 1)",
            _labels(target=name, host=host, expected=expect, path=v.path.value,
                    status=v.status.name), 1)
        if v.dns is not None:
            add("probe_dns_lookup_time_seconds", "gauge", "DNS lookup time of the target",
                _labels(target=name), v.dns.latency_ms / 1000.0)
        seconds = v.transfer_seconds
        if seconds is not None:
            add("probe_transfer_duration_seconds", "gauge", "test transfer time of the target",
                _labels(target=name), seconds)
    add("probe_duration_seconds", "gauge", "how long the whole check took", "",
        report.duration_seconds)
    add("s3_route_agent_status", "gauge", "overall Nagios status: 0 OK 1 WARNING 2 CRITICAL "
        "3 UNKNOWN", "", int(report.status))
    add("s3_route_agent_ec2_calls", "gauge", "EC2 API calls the last check made", "",
        report.facts.ec2_calls)
    if report.facts.inventory_age_seconds is not None:
        add("s3_route_agent_inventory_age_seconds", "gauge", "age of the EC2 facts used", "",
            report.facts.inventory_age_seconds)
    add("s3_route_agent_last_run_timestamp_seconds", "gauge", "when the last check ran", "",
        report.time_ms / 1000.0)
    observed = report.observed
    if observed is not None:
        # Counters: bytes counted once per socket across cycles, kept in state_dir since
        # observed.nat_cost.since (a reset of that state is a counter reset).
        for totals in observed.summary:
            for direction, value in (("sent", totals.total_sent),
                                     ("received", totals.total_received)):
                add("s3_route_agent_observed_bytes_total", "counter", "bytes of the host's S3 "
                    "connections by path, each socket's growth counted once",
                    _labels(path=totals.path, direction=direction), value)
            add("s3_route_agent_observed_flows", "gauge", "live S3 connections of the host by "
                "path", _labels(path=totals.path), totals.flows)
        add("s3_route_agent_observed_flows_not_ok", "gauge", "live S3 connections of the host's "
            "software off observe.expect", "", len(observed.bad_flows))
        cost = observed.nat_cost
        if cost is not None:
            add("s3_route_agent_nat_processing_bytes_total", "counter", "S3 bytes of the host "
                "that took a NAT gateway", "", cost.total_bytes)
            add("s3_route_agent_nat_processing_cost_usd_total", "counter", "estimated NAT "
                "gateway data-processing charge of those bytes (USD)", "", cost.total_usd)
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

    def emit(self, report: Report) -> None:
        """Atomically replace the file with this report's metrics."""
        # 0644: node_exporter usually runs as another user.
        replace_file(self.path, prometheus_text(report), mode=0o644)
