"""The report for people: a line per target (status, path, reason), then each target's evidence.

Rendered from the typed :class:`~s3_route_agent.report.document.Report`; the caller redacts the
text (``check`` prints it through :func:`s3_route_agent.redact.redact`).
"""

from __future__ import annotations

import logging

from s3_route_agent.engine.evidence import OracleSection, ProbeEvidence, TransferResult
from s3_route_agent.engine.model import PathKind, TargetVerdict
from s3_route_agent.report.document import Report
from s3_route_agent.report.observed_view import observed_lines
from s3_route_agent.report.policies import PoliciesSection

logger = logging.getLogger(__name__)


def identity_line(instance_id: str | None, region: str, vpc_id: str, subnet_id: str,
                  source: str | None = None) -> str:
    """"host i-… in REGION vpc-… subnet-…", the line every text rendering starts with."""
    line = f"host {instance_id or '-'} in {region} {vpc_id} {subnet_id}"
    return f"{line} (identity from {source})" if source else line


def render_text(report: Report) -> str:
    """The report for people: a line per target (status, path, reason), then the evidence."""
    from s3_route_agent import __version__
    lines = [f"s3-route-agent {__version__}  {report.time}  overall {report.status.name}"]
    ident = report.identity
    if ident:
        lines.append(identity_line(ident.instance_id, ident.region, ident.vpc_id,
                                   ident.subnet_id, ident.source))
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
        lines.append("")
        for v in verdicts:
            lines.append(f"{v.status.name:<8} {v.target.name:<{name_w}}  "
                         f"{v.target.host:<{host_w}}  {v.path.value:<10} {v.reason}")
        for v in verdicts:
            lines.append("")
            lines.extend(_target_lines(v))
    lines.extend(observed_lines(report.observed))
    return "\n".join(lines)


def _target_lines(v: TargetVerdict) -> list[str]:
    """One target's block: DNS, evidence, live evidence, errors."""
    lines = [f"[{v.target.name}] {v.target.host} -> {v.path.value} (expect "
             f"{v.target.expect.value})"]
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
