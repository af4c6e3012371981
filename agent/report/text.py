"""The report for people: a line per target (status, path, reason), then each target's evidence.

Rendered from the typed :class:`~s3_route_agent.report.document.Report`; the caller redacts the
text (``check`` prints it through :func:`s3_route_agent.redact.redact`).
"""

from __future__ import annotations

import logging

from s3_route_agent.engine.evidence import OracleSection, ProbeEvidence, TransferResult
from s3_route_agent.engine.model import PathKind, Status, TargetVerdict
from s3_route_agent.report.document import Report
from s3_route_agent.report.observed_view import observed_lines
from s3_route_agent.report.policies import PoliciesSection

logger = logging.getLogger(__name__)


def identity_line(instance_id: str | None, region: str, vpc_id: str, subnet_id: str,
                  source: str | None = None) -> str:
    """"host i-… in REGION vpc-… subnet-…", the line every text rendering starts with."""
    line = f"host {instance_id or '-'} in {region} {vpc_id} {subnet_id}"
    return f"{line} (identity from {source})" if source else line


# ANSI SGR colours (ECMA-48) of the status words on a terminal.
STATUS_COLOURS = {"OK": "32", "WARNING": "33", "CRITICAL": "31", "UNKNOWN": "35"}
NAME_MAX, HOST_MAX = 22, 30


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters in the middle (``demo-bucket.s3...azonaws.com``), so
    both the bucket and the region part of a long name stay visible."""
    if len(text) <= width:
        return text
    tail = (width - 3) // 2
    return text[:width - 3 - tail] + "..." + text[len(text) - tail:]


def fit_lines(lines: list[str], width: int, *, break_long_words: bool = True) -> list[str]:
    """Every line at most ``width`` columns: long lines are wrapped at spaces, continuation
    lines indented under the text (after a ``- `` bullet); a word longer than a line (a long
    interface-endpoint name) is cut, or with ``break_long_words=False`` kept whole on a line of
    its own (where a reader copies names and commands)."""
    import textwrap
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        indent = line[:len(line) - len(line.lstrip())]
        body = line[len(indent):]
        hang = indent + ("  " if body[:2] in ("- ", "! ") else "    ")
        out.extend(textwrap.wrap(body, width=width, initial_indent=indent,
                                 subsequent_indent=hang, break_on_hyphens=False,
                                 break_long_words=break_long_words) or [line])
    return out


def colour_status_words(lines: list[str]) -> list[str]:
    """The status word that starts a table row (or a ``[target] STATUS`` header) coloured."""
    out = []
    for line in lines:
        word = line.split(" ", 1)[0]
        if word in STATUS_COLOURS:
            line = f"\x1b[{STATUS_COLOURS[word]}m{word}\x1b[0m{line[len(word):]}"
        out.append(line)
    return out


def render_text(report: Report, *, verbose: bool = False, width: int | None = None,
                colour: bool = False) -> str:
    """The report for people, as a Nagios plugin prints it: the plugin line
    (``S3ROUTE CRITICAL - 2/5 target(s) not OK: ...``, perfdata appended by the caller), then the
    long output: who and where, a line per target (status, name, host, path, reason), then
    the DNS answers and evidence of each target that is not OK (of every target when
    ``verbose``), then the observed flows. ``width`` (80 on a terminal) shortens the host
    column and wraps long lines; ``colour`` colours the status words (the plugin line never)."""
    from s3_route_agent import __version__
    from s3_route_agent.report.nagios import plugin_line, plugin_summary
    lines = [f"s3-route-agent {__version__}  {report.time}"]
    ident = report.identity
    if ident:
        lines.append(identity_line(ident.instance_id, ident.region, ident.vpc_id,
                                   ident.subnet_id, ident.source)
                     + (f", region from {ident.region_source}"
                        if ident.region_source != ident.source else ""))
    facts = report.facts
    if facts.route_table:
        lines.append(f"route table {facts.route_table} ({facts.route_table_association}), "
                     f"inventory from {facts.inventory_source}, {facts.ec2_calls} EC2 call(s)"
                     + (f", bucket facts from {facts.bucket_facts_source}, "
                        f"{facts.s3_calls} S3 call(s)"
                        if facts.bucket_facts_source != "none" else ""))
    for error in report.errors:
        lines.append(f"error: {error}")
    lines.extend(_policy_lines(report.policies))
    verdicts = report.verdicts
    if verdicts:
        name_w = max(len(v.target.name) for v in verdicts)
        host_w = max(len(v.target.host) for v in verdicts)
        if width is not None:
            name_w, host_w = min(name_w, NAME_MAX), min(host_w, HOST_MAX)
        lines.append("")
        for v in verdicts:
            row = (f"{v.status.name:<8} {shorten(v.target.name, name_w):<{name_w}}  "
                   f"{shorten(v.target.host, host_w):<{host_w}}  {v.path.value:<10}")
            # The reason when it fits; else it is in the target's block below (not OK targets).
            if width is None or len(row) + 1 + len(v.reason) <= width:
                row += f" {v.reason}"
            lines.append(row.rstrip())
        shown = [v for v in verdicts if verbose or v.status is not Status.OK]
        for v in shown:
            lines.append("")
            lines.extend(_target_lines(v))
        hidden = len(verdicts) - len(shown)
        if hidden:
            lines.append("")
            lines.append(f"({hidden} OK target(s): evidence with -v)")
    lines.extend(observed_lines(report.observed))
    if width is not None:
        lines = fit_lines(lines, width)
    if colour:
        lines = colour_status_words(lines)
    first = plugin_line(report.status, plugin_summary(report))
    return "\n".join([first, *lines])


def _target_lines(v: TargetVerdict) -> list[str]:
    """One target's block: DNS, evidence, live evidence, errors."""
    lines = [f"[{v.target.name}] {v.target.host} -> {v.path.value} (expect "
             f"{v.target.expect.value}): {v.status.name}", f"  {v.reason}"]
    dns = v.dns
    if dns is not None and dns.addresses:
        chain = " -> ".join(dns.cname_chain)
        addrs = ", ".join(a.ip for a in dns.addresses)
        lines.append(f"  dns: {addrs}" + (f" via {chain}" if chain else "")
                     + (f" (from {dns.nameserver}, {round(dns.latency_ms, 1)} ms)"
                        if dns.nameserver else ""))
    lines.extend(f"  - {sentence}" for sentence in v.evidence)
    lines.extend(f"  - {sentence}" for addr in v.addresses for sentence in addr.evidence)
    lines.extend(_blocked_lines(v))
    if v.proxy is not None and v.proxy.decision.proxied:
        route = v.proxy.proxy_route
        lines.append(f"  proxy: {v.proxy.to_dict()['proxy_url']} ({v.proxy.decision.source}), "
                     f"proxy address {(route.address if route else None) or '?'} takes "
                     f"{(route.path if route else None) or '?'}")
    if v.transfer is not None:
        lines.extend(_transfer_lines(v.transfer))
    if v.oracle is not None:
        lines.append(_oracle_line(v.oracle))
    if v.probe is not None:
        lines.extend(_probe_lines(v.probe))
    lines.extend(f"  ! {error}" for error in v.errors)
    return lines


def _blocked_lines(v: TargetVerdict) -> list[str]:
    """For blocked addresses: the path the route would take, what drops it, what to change."""
    lines: list[str] = []
    for addr in v.addresses:
        if addr.path is not PathKind.BLOCKED:
            continue
        route = addr.route.route if addr.route else None
        lines.append(f"  blocked: {addr.ip} would take {addr.would_take.value if addr.would_take else '?'}"
                     + (f" (route {route.destination} -> {route.target_id})" if route else ""))
        for blocker in addr.blocked_by:
            lines.append(f"    dropped by {blocker.summary()}")
            lines.append(f"    fix: {blocker.fix}")
    return lines


def _policy_lines(policies: PoliciesSection | None) -> list[str]:
    """Text lines for the policies section: one per bucket and per endpoint check."""
    if policies is None:
        return []
    lines = ["policies:"]
    for b in policies.buckets:
        where = b.region or "region unknown"
        if b.other_region:
            where += " (another region: bypasses this VPC's gateway endpoint)"
        if b.policy == "unreadable":
            rule = "policy unreadable"
        elif b.policy == "none":
            rule = "no bucket policy"
        elif b.enforced:
            rule = "enforces " + ", ".join(
                [f"aws:SourceVpce {i}" for i in b.vpce_ids]
                + [f"aws:SourceVpc {i}" for i in b.vpc_ids])
        else:
            rule = "policy does not tie access to an endpoint"
        lines.append(f"  bucket {b.bucket}: {where}; {rule} [{b.source}]")
        lines.extend(f"    ! {problem}" for problem in b.problems)
    for e in policies.endpoints:
        target = f"{e.purpose} actions on {e.bucket}/{e.prefix}"
        if e.check is not None and e.check.default_policy:
            verdict = f"default policy: allows the {target}"
        elif e.check is not None and e.check.allows_all:
            verdict = f"allows the {target}"
        else:
            verdict = f"denies {', '.join(e.denied) or '?'} ({target})"
        lines.append(f"  endpoint {e.endpoint_id} ({e.type}): {verdict}")
    lines.extend(f"  - {finding}" for finding in policies.findings)
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _transfer_lines(transfer: TransferResult) -> list[str]:
    """The transfer's outcome and one line per step."""
    lines = [f"  transfer: {transfer.outcome}: {transfer.message or ''}"]
    for step in transfer.steps:
        lines.append(
            f"    {step.step:<7} {step.http_status or '-':>3} "
            f"peer {step.peer_address or '-'}  dns {_ms(step.dns_ms)} "
            f"tcp {_ms(step.connect_ms)} tls {_ms(step.tls_ms)} "
            f"ttfb {_ms(step.first_byte_ms)} total {_ms(step.total_ms)} ms"
            + (f"  {step.throughput_mbps:.1f} Mbit/s" if step.throughput_mbps else "")
            + (f"  id {step.request_id}" if step.request_id else "")
            + (f"  {step.error_code}" if step.error_code else ""))
    return lines


def _oracle_line(oracle: OracleSection) -> str:
    """What S3 said through the oracle keys, against the prediction."""
    said = oracle.evidence
    reads = ", ".join(f"{r.key}: {r.outcome}" for r in oracle.reads)
    stated = (f"S3 says {said.path.value if said.path else 'through an endpoint'}"
              + (f" via {said.vpce_id}" if said.vpce_id else "")
              if said.conclusive else f"inconclusive ({said.kind})")
    agrees = {True: "; confirms the prediction", False: "; CONTRADICTS the prediction",
              None: ""}[said.agrees]
    return f"  oracle: {stated}{agrees} ({reads} through {oracle.host})"


def _probe_lines(probe: ProbeEvidence) -> list[str]:
    """The traceroute's hops and the sniffer's SYNs."""
    lines: list[str] = []
    trace = probe.traceroute
    if trace is not None:
        if trace.skipped:
            lines.append(f"  traceroute: skipped: {trace.reason}")
        else:
            hops = ", ".join(f"{h.ttl}:{h.address or '*'}"
                             + (f"({h.kind})" if h.kind not in (None, "silent") else "")
                             for h in trace.hops)
            lines.append(f"  traceroute tcp/{trace.port} to {trace.destination}: {hops}")
    sniff = probe.sniffer
    if sniff is not None:
        if sniff.skipped:
            lines.append(f"  sniffer: skipped: {sniff.reason}")
        else:
            syns = ", ".join(f"{s.dst}:{s.dport} on {s.iface}" for s in sniff.syns)
            lines.append(f"  sniffer: SYN {syns or 'none seen'}")
    return lines
