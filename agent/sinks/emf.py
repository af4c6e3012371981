"""CloudWatch metrics as embedded metric format (EMF) lines.

One EMF line per target per report, dimensions ``TargetName``, ``Path``, ``Expected`` (low
cardinality on purpose: every distinct dimension value set is a billed custom metric — CloudWatch
pricing; EMF specification "Dimensions"), one line per path the host's observed S3 traffic took
(dimension ``Path``: bytes counted this cycle, flows), plus one host line with ``Status`` only
(with the NAT data-processing bytes and cost estimate of the cycle). Instance, VPC,
subnet and AZ go in as plain properties: searchable with Logs Insights, never metric dimensions.
At most 100 metrics per directive (EMF specification, "CloudWatchMetrics ... Metrics: up to 100").

The lines go to a file that the CloudWatch agent ships to a log group (see cloudwatch/); CloudWatch
Logs extracts the metrics from any event in this format, no header needed ("Using the
PutLogEvents API to send manually-created embedded metric format logs": the
``x-amzn-logs-format: json/emf`` header is optional).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, IO, Optional

from s3_route_agent.engine.model import PRIVATE_PATHS, Status, TargetVerdict
from s3_route_agent.redact import redact
from s3_route_agent.report.document import Report
from s3_route_agent.sinks.base import Sink
from s3_route_agent.sinks.jsonl import RotatingLineWriter

logger = logging.getLogger(__name__)

MAX_METRICS_PER_DIRECTIVE = 100
# Two dimension sets per target line: with Path (which path the fleet takes, for dashboards) and
# without (one stable series per target, for alarms: Minimum of PathOk < 1 means some host is off
# its expected path, whichever path that is).
TARGET_DIMENSIONS = (("TargetName", "Path", "Expected"), ("TargetName", "Expected"))
HOST_DIMENSIONS = (("Status",), ())

# metric name -> unit (EMF units are CloudWatch's StandardUnit names).
TARGET_METRICS = {"PathOk": "Count", "PathPrivate": "Count", "DnsSeconds": "Seconds",
                  "TransferSeconds": "Seconds"}
HOST_METRICS = {"CheckOk": "Count", "CycleSeconds": "Seconds", "Ec2Calls": "Count",
                "InventoryAgeSeconds": "Seconds", "TargetsNotOk": "Count",
                "ObservedFlowsNotOk": "Count", "NatProcessingBytes": "Bytes",
                "NatProcessingCostUsd": "None"}
# The host's observed S3 traffic, one line per path it took (dimension Path only): the bytes
# counted at this cycle (each socket's growth since the last look, so CloudWatch's Sum over any
# period is that period's bytes, a long connection counted once), and the flows now.
PATH_DIMENSIONS = (("Path",),)
PATH_METRICS = {"ObservedBytes": "Bytes", "ObservedFlows": "Count", "ObservedFlowsNotOk": "Count"}


def _target_values(verdict: TargetVerdict) -> dict[str, float]:
    values = {"PathOk": 1.0 if verdict.status is Status.OK else 0.0,
              "PathPrivate": 1.0 if verdict.path in PRIVATE_PATHS else 0.0}
    if verdict.dns is not None:
        values["DnsSeconds"] = round(verdict.dns.latency_ms / 1000.0, 6)
    seconds = verdict.transfer_seconds
    if seconds is not None:
        values["TransferSeconds"] = round(seconds, 6)
    return values


def emf_records(report: Report, namespace: str) -> list[dict[str, Any]]:
    """The EMF documents for one report: one per target, then one for the host."""
    ts = report.time_ms
    ident = report.identity
    common = {"instance_id": ident.instance_id if ident else None,
              "vpc_id": ident.vpc_id if ident else None,
              "subnet_id": ident.subnet_id if ident else None,
              "availability_zone": ident.availability_zone if ident else None,
              "region": ident.region if ident else None, "run_id": report.run_id}
    out: list[dict[str, Any]] = []
    for verdict in report.verdicts:
        out.append(_document(ts, namespace, TARGET_DIMENSIONS, {
            "TargetName": verdict.target.name, "Path": verdict.path.value,
            "Expected": verdict.target.expect.value}, _target_values(verdict), TARGET_METRICS,
            dict(common, host=verdict.target.host, status=verdict.status.name,
                 reason=redact(verdict.reason))))
    observed = report.observed
    if observed is not None:
        for totals in observed.summary:
            if not totals.flows and not totals.new_bytes:
                continue
            bad = sum(1 for f in observed.bad_flows if f.path.value == totals.path)
            out.append(_document(ts, namespace, PATH_DIMENSIONS, {"Path": totals.path}, {
                "ObservedBytes": float(totals.new_bytes), "ObservedFlows": float(totals.flows),
                "ObservedFlowsNotOk": float(bad)}, PATH_METRICS,
                dict(common, expected=observed.expect.value)))
    facts = report.facts
    host_values: dict[str, float] = {
        "CheckOk": 1.0 if report.status is Status.OK else 0.0,
        "CycleSeconds": round(report.duration_seconds, 6),
        "Ec2Calls": float(facts.ec2_calls),
        "TargetsNotOk": float(report.targets_not_ok),
    }
    if facts.inventory_age_seconds is not None:
        host_values["InventoryAgeSeconds"] = round(facts.inventory_age_seconds, 1)
    if observed is not None:
        host_values["ObservedFlowsNotOk"] = float(len(observed.bad_flows))
        if observed.nat_cost is not None:
            host_values["NatProcessingBytes"] = float(observed.nat_cost.new_bytes)
            host_values["NatProcessingCostUsd"] = observed.nat_cost.new_usd
    out.append(_document(ts, namespace, HOST_DIMENSIONS, {"Status": report.status.name},
                         host_values, HOST_METRICS, dict(common, summary=redact(report.summary))))
    return out


def _document(ts: int, namespace: str, dimensions: tuple[tuple[str, ...], ...],
              dim_values: dict[str, str],
              values: dict[str, float], units: dict[str, str],
              properties: dict[str, Any]) -> dict[str, Any]:
    metrics = [{"Name": name, "Unit": units[name]} for name in values]
    if len(metrics) > MAX_METRICS_PER_DIRECTIVE:
        raise ValueError("more than 100 metrics in one EMF directive")
    doc: dict[str, Any] = {"_aws": {"Timestamp": ts, "CloudWatchMetrics": [
        {"Namespace": namespace, "Dimensions": [list(d) for d in dimensions],
         "Metrics": metrics}]}}
    # Properties first, so dimension and metric values (the EMF root members) win on a clash.
    doc.update({k: v for k, v in properties.items() if v is not None})
    doc.update(dim_values)
    doc.update(values)
    return doc


class EmfSink(Sink):
    """Writes EMF lines to a rotating file (shipped by the CloudWatch agent) or to a stream."""

    name = "emf"

    def __init__(self, namespace: str = "S3RouteAgent", path: str | None = None,
                 max_bytes: int = 10 * 1024 * 1024, backups: int = 2,
                 stream: IO[str] | None = None) -> None:
        """File when ``path`` is given, else ``stream`` (default stdout)."""
        self.namespace = namespace
        self._writer = RotatingLineWriter(path, max_bytes, backups) if path else None
        self._stream = stream

    def emit(self, report: Report) -> None:
        """Write the report's EMF documents, one line each."""
        for doc in emf_records(report, self.namespace):
            line = json.dumps(doc, separators=(",", ":"))
            if self._writer is not None:
                self._writer.write_line(line)
            else:
                stream = self._stream or sys.stdout
                stream.write(line + "\n")
                stream.flush()

    def close(self, timeout: Optional[float] = None) -> None:
        """Close the file (local and quick: ``timeout`` is not needed)."""
        if self._writer is not None:
            self._writer.close()
