"""Nagios performance data for ``check``'s text output (after ``|`` on the first line).

Format per the Nagios plugin development guidelines, "Performance data":
``'label'=value[UOM];[warn];[crit];[min];[max]``, space separated, labels quoted when they
contain spaces or ``=`` (single quotes doubled inside), UOM ``s`` for seconds, none for counts.
"""

from __future__ import annotations

import logging
import re
from typing import Any

logger = logging.getLogger(__name__)

_PLAIN = re.compile(r"^[A-Za-z0-9_.:/-]+$")


def _label(name: str) -> str:
    return name if _PLAIN.match(name) else "'" + name.replace("'", "''") + "'"


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def perfdata(report: dict[str, Any]) -> str:
    """The perfdata string for a report (no leading ``|``)."""
    targets = report.get("targets") or []
    facts = report.get("facts") or {}
    ok = sum(1 for t in targets if t.get("status") == "OK")
    items = [
        f"{_label('duration')}={_num(float(report.get('duration_ms') or 0) / 1000.0)}s;;;0",
        f"{_label('targets_ok')}={ok};;{len(targets)}:;0;{len(targets)}",
        f"{_label('ec2_calls')}={int(facts.get('ec2_calls') or 0)};;;0",
    ]
    for t in targets:
        name = str(t.get("name"))
        items.append(f"{_label(name + '_ok')}={1 if t.get('status') == 'OK' else 0};;1:;0;1")
        dns = t.get("dns") or {}
        if isinstance(dns.get("latency_ms"), (int, float)):
            items.append(f"{_label(name + '_dns')}={_num(float(dns['latency_ms']) / 1000.0)}s;;;0")
    return " ".join(items)


def with_perfdata(text: str, report: dict[str, Any]) -> str:
    """``text`` with `` | perfdata`` appended to its first line (the plugin output line)."""
    first, sep, rest = text.partition("\n")
    return f"{first} | {perfdata(report)}{sep}{rest}"
