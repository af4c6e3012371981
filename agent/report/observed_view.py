"""The host's observed S3 traffic for people: lines for ``check --format text`` and the
top-like screen of ``s3-route-agent observe`` (sorted by bytes, the path coloured unless
``NO_COLOR`` is set)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from s3_route_agent.engine.model import Facts

if TYPE_CHECKING:  # annotations only: a report without observation never loads the engine's
    from s3_route_agent.engine.observed import Flow, ObservedSection  # observation module

logger = logging.getLogger(__name__)

# ANSI SGR colours (ECMA-48): green for the endpoint paths, red for public, yellow for paths the
# agent cannot follow further, magenta for no route or unknown.
PATH_COLOURS = {"gateway": "32", "interface": "32", "public": "31", "proxy": "33",
                "transit": "33", "no_route": "35", "unknown": "35", "mixed": "33"}


def human_bytes(count: int | None) -> str:
    """``1.5 MiB``: a byte count for a column (``-`` when unknown)."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover


def paint(text: str, path: str, color: bool) -> str:
    """``text`` in the colour of ``path`` (unchanged without colour)."""
    code = PATH_COLOURS.get(path)
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def summary_text(section: ObservedSection) -> str:
    """``3 S3 flow(s): public 1 (1.2 MiB), gateway 2 (40 KiB); NAT estimate $0.0001 ...``."""
    parts = [f"{t.path} {t.flows} ({human_bytes(t.bytes)})" for t in section.summary if t.flows]
    line = f"{len(section.flows)} S3 flow(s)" + (": " + ", ".join(parts) if parts else "")
    cost = section.nat_cost
    if cost is not None and cost.total_bytes:
        line += (f"; NAT data processing: {human_bytes(cost.total_bytes)} counted, estimate "
                 f"${cost.total_usd:.4f} at ${cost.price_per_gb}/GB")
    return line


def observed_lines(section: ObservedSection | None) -> list[str]:
    """The ``observed`` block of the text report: the summary, one line per flow, problems."""
    if section is None:
        return []
    lines = ["", f"observed (expect {section.expect.value}, from {section.source}): "
                 f"{summary_text(section)}"]
    for flow in section.flows:
        mark = "own" if flow.own else flow.status.name
        lines.append(f"  {mark:<8} {flow.describe()}  {flow.state} "
                     f"sent {human_bytes(flow.bytes_sent)} received "
                     f"{human_bytes(flow.bytes_received)}")
    lines.extend(f"  ! {error}" for error in section.errors)
    lines.extend(f"  - {note}" for note in section.notes)
    return lines


COLUMNS = (("PID", 7), ("PROCESS", 15), ("UID", 6), ("REMOTE", 22), ("HOST", 34),
           ("PATH", 10), ("REGION", 12), ("VIA", 22), ("STATE", 11), ("SENT", 10), ("RECV", 10),
           ("NEW", 10))


def _cells(flow: Flow) -> list[str]:
    process = flow.process
    return [str(process.pid) if process else "-", (process.name if process else "?")
            + (" *" if flow.own else ""), str(flow.uid), f"{flow.remote_ip}:{flow.remote_port}",
            flow.hostname or "-", flow.path.value, flow.s3_region or "-",
            flow.endpoint_id or flow.via or "-", flow.state, human_bytes(flow.bytes_sent),
            human_bytes(flow.bytes_received), human_bytes(flow.new_bytes)]


def render_top(section: ObservedSection, facts: Facts | None, interval: float, width: int = 120,
               color: bool = True) -> str:
    """One screen of ``observe``: who the host is, totals per path, then the flows, most bytes
    first (``*`` marks the agent's own), each path in its colour."""
    ident = facts.identity if facts is not None else None
    head = (f"s3-route-agent observe  every {interval:g} s  "
            + (f"{ident.instance_id or '-'} {ident.region} {ident.vpc_id} {ident.subnet_id}"
               if ident else "identity unknown")
            + f"  expect {section.expect.value}  status {section.status.name}")
    lines = [head[:width], summary_text(section)[:width]]
    if section.bad_flows:
        lines.append(paint(f"off the expected path: {section.bad_flows[0].describe()}"
                           + (f" (+{len(section.bad_flows) - 1} more)"
                              if len(section.bad_flows) > 1 else ""), "public", color)[:width * 2])
    lines.append("")
    header = " ".join(f"{name:<{size}}" for name, size in COLUMNS)
    lines.append(header[:width])
    for flow in sorted(section.flows, key=lambda f: (-f.bytes, f.remote_ip)):
        cells = _cells(flow)
        row = []
        for (name, size), cell in zip(COLUMNS, cells):
            text = f"{cell[:size]:<{size}}"
            row.append(paint(text, flow.path.value, color) if name == "PATH" else text)
        lines.append(" ".join(row))
    if not section.flows:
        lines.append("(no connection to S3 right now)")
    for problem in (*section.errors, *section.notes):
        lines.append(f"! {problem}"[:width * 2])
    lines.append("connections opened and closed between two refreshes are not seen; "
                 "Ctrl-C to quit")
    return "\n".join(lines)

