"""Nagios performance data for ``check``'s text output (after ``|`` on the first line).

Format per the Nagios plugin development guidelines, "Performance data":
``'label'=value[UOM];[warn];[crit];[min];[max]``, space separated, labels quoted when they
contain spaces or ``=`` (single quotes doubled inside), UOM ``s`` for seconds, none for counts.
"""

from __future__ import annotations

import logging
import re

from s3_route_agent.engine.model import Status
from s3_route_agent.report.document import Report

logger = logging.getLogger(__name__)

_PLAIN = re.compile(r"^[A-Za-z0-9_.:/-]+$")


def _label(name: str) -> str:
    return name if _PLAIN.match(name) else "'" + name.replace("'", "''") + "'"


def _num(value: float | int) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def perfdata(report: Report) -> str:
    """The perfdata string for a report (no leading ``|``)."""
    verdicts = report.verdicts
    ok = sum(1 for v in verdicts if v.status is Status.OK)
    items = [
        f"{_label('duration')}={_num(report.duration_seconds)}s;;;0",
        f"{_label('targets_ok')}={ok};;{len(verdicts)}:;0;{len(verdicts)}",
        f"{_label('ec2_calls')}={report.facts.ec2_calls};;;0",
    ]
    for v in verdicts:
        name = v.target.name
        items.append(f"{_label(name + '_ok')}={1 if v.status is Status.OK else 0};;1:;0;1")
        if v.dns is not None:
            items.append(f"{_label(name + '_dns')}={_num(v.dns.latency_ms / 1000.0)}s;;;0")
    return " ".join(items)


PLUGIN_NAME = "S3ROUTE"
# The summary of the plugin line is kept short: Nagios shows it in one table cell and keeps at
# most 4 KB of a plugin's output (Nagios plugin development guidelines, "Plugin Output").
SUMMARY_MAX = 200


def plugin_line(status: Status, summary: str) -> str:
    """``S3ROUTE CRITICAL - summary``: the first line of a Nagios plugin's output."""
    return f"{PLUGIN_NAME} {status.name} - {' '.join(summary.split())}"


def _bounded(parts: list[str], joiner: str = "; ", max_len: int = SUMMARY_MAX) -> str:
    """``parts`` joined until ``max_len``, then "(+N more)" for those left out."""
    out: list[str] = []
    for index, part in enumerate(parts):
        left = len(parts) - index
        if out and len(joiner.join(out + [part])) + len(f" (+{left} more)") > max_len:
            return joiner.join(out) + f" (+{left} more)"
        out.append(part)
    return joiner.join(out)


def plugin_summary(report: Report) -> str:
    """The plugin line's summary: the failing targets by name (path and what was expected),
    then flows of the host's software off the expected path; the first error when nothing
    could be checked."""
    verdicts = report.verdicts
    if not verdicts:
        return report.errors[0] if report.errors else "no target checked"
    order = [Status.CRITICAL, Status.UNKNOWN, Status.WARNING]
    bad = sorted((v for v in verdicts if v.status is not Status.OK),
                 key=lambda v: order.index(v.status) if v.status in order else len(order))
    parts = [f"{v.target.name} {v.path.value}"
             + (f" (expected {v.target.expect.value})" if v.path.value != v.target.expect.value
                else "")
             + ("" if v.status is report.status else f" {v.status.name}") for v in bad]
    observed = report.observed
    if observed is not None:
        parts += [f"flow {f.describe()} (expected {observed.expect.value})"
                  for f in observed.bad_flows]
    if parts:
        head = f"{len(bad)}/{len(verdicts)} target(s) not OK" if bad else "a flow not OK"
        return f"{head}: " + _bounded(parts)
    head = f"{len(verdicts)}/{len(verdicts)} target(s) OK"
    if report.errors:
        return f"{head}, but: {report.errors[0]}"
    return f"{head}: " + _bounded([f"{v.target.name} {v.path.value}" for v in verdicts], ", ")


def with_perfdata(text: str, report: Report) -> str:
    """``text`` with `` | perfdata`` appended to its first line (the plugin output line)."""
    first, sep, rest = text.partition("\n")
    return f"{first} | {perfdata(report)}{sep}{rest}"
