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


def with_perfdata(text: str, report: Report) -> str:
    """``text`` with `` | perfdata`` appended to its first line (the plugin output line)."""
    first, sep, rest = text.partition("\n")
    return f"{first} | {perfdata(report)}{sep}{rest}"
