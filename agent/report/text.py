"""The report for people: a line per target (status, path, reason), then each target's evidence."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def identity_line(ident: dict[str, Any], with_source: bool = True) -> str:
    """"host i-… in REGION vpc-… subnet-…", the line every text rendering starts with."""
    line = (f"host {ident.get('instance_id') or '-'} in {ident['region']} {ident['vpc_id']} "
            f"{ident['subnet_id']}")
    return f"{line} (identity from {ident['source']})" if with_source else line


def render_text(report: dict[str, Any]) -> str:
    """The report for people: a line per target (status, path, reason), then the evidence."""
    lines = [f"s3-route-agent {report['agent']['version']}  {report['time']}  "
             f"overall {report['status']}"]
    ident = report.get("identity")
    if ident:
        lines.append(identity_line(ident))
    facts = report["facts"]
    if facts.get("route_table"):
        lines.append(f"route table {facts['route_table']} ({facts['route_table_association']}), "
                     f"inventory from {facts['inventory_source']}, {facts['ec2_calls']} EC2 call(s)"
                     + (f", bucket facts from {facts['bucket_facts_source']}, "
                        f"{facts.get('s3_calls', 0)} S3 call(s)"
                        if facts.get("bucket_facts_source", "none") != "none" else ""))
    for error in report["errors"]:
        lines.append(f"error: {error}")
    lines.extend(_policy_lines(report.get("policies")))
    targets = report["targets"]
    if targets:
        name_w = max(len(t["name"]) for t in targets)
        host_w = max(len(t["host"]) for t in targets)
        lines.append("")
        for t in targets:
            lines.append(f"{t['status']:<8} {t['name']:<{name_w}}  {t['host']:<{host_w}}  "
                         f"{t['path']:<10} {t['reason']}")
        for t in targets:
            lines.append("")
            lines.append(f"[{t['name']}] {t['host']} -> {t['path']} (expect {t['expect']})")
            dns = t.get("dns") or {}
            if dns.get("addresses"):
                chain = " -> ".join(dns.get("cname_chain") or [])
                addrs = ", ".join(a["ip"] for a in dns["addresses"])
                lines.append(f"  dns: {addrs}" + (f" via {chain}" if chain else "")
                             + (f" (from {dns['nameserver']}, {dns['latency_ms']} ms)"
                                if dns.get("nameserver") else ""))
            for sentence in t["evidence"]:
                lines.append(f"  - {sentence}")
            for addr in t["addresses"]:
                for sentence in addr["evidence"]:
                    lines.append(f"  - {sentence}")
            lines.extend(_live_lines(t))
            for error in t["errors"]:
                lines.append(f"  ! {error}")
    return "\n".join(lines)


def _policy_lines(policies: dict[str, Any] | None) -> list[str]:
    """Text lines for the policies section: one per bucket and per endpoint check."""
    if not policies:
        return []
    lines = ["policies:"]
    for b in policies.get("buckets", []):
        where = b.get("region") or "region unknown"
        if b.get("other_region"):
            where += " (another region: bypasses this VPC's gateway endpoint)"
        if b["policy"] == "unreadable":
            rule = "policy unreadable"
        elif b["policy"] == "none":
            rule = "no bucket policy"
        elif b.get("enforced"):
            rule = "enforces " + ", ".join(
                [f"aws:SourceVpce {i}" for i in b["vpce_ids"]]
                + [f"aws:SourceVpc {i}" for i in b["vpc_ids"]])
        else:
            rule = "policy does not tie access to an endpoint"
        lines.append(f"  bucket {b['bucket']}: {where}; {rule} [{b.get('source')}]")
        for problem in b.get("problems", []):
            lines.append(f"    ! {problem}")
    for e in policies.get("endpoints", []):
        target = f"{e['purpose']} actions on {e['bucket']}/{e['prefix']}"
        if e.get("default_policy"):
            verdict = f"default policy: allows the {target}"
        elif e.get("allows_all"):
            verdict = f"allows the {target}"
        else:
            verdict = f"denies {', '.join(e['denied']) or '?'} ({target})"
        lines.append(f"  endpoint {e['endpoint_id']} ({e['type']}): {verdict}")
    for finding in policies.get("findings", []):
        lines.append(f"  - {finding}")
    return lines


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def _live_lines(target: dict[str, Any]) -> list[str]:
    """Text lines for a target's live evidence: proxy, transfer steps, traceroute, sniffer."""
    lines: list[str] = []
    proxy = target.get("proxy")
    if proxy and proxy.get("proxy_url"):
        own = proxy.get("proxy_path") or {}
        lines.append(f"  proxy: {proxy['proxy_url']} ({proxy['source']}), proxy address "
                     f"{own.get('address') or '?'} takes {own.get('path') or '?'}")
    transfer = target.get("transfer")
    if transfer:
        lines.append(f"  transfer: {transfer['outcome']}: {transfer.get('message') or ''}")
        for step in transfer.get("steps") or []:
            lines.append(
                f"    {step['step']:<7} {step.get('http_status') or '-':>3} "
                f"peer {step.get('peer_address') or '-'}  dns {_ms(step.get('dns_ms'))} "
                f"tcp {_ms(step.get('connect_ms'))} tls {_ms(step.get('tls_ms'))} "
                f"ttfb {_ms(step.get('first_byte_ms'))} total {_ms(step.get('total_ms'))} ms"
                + (f"  {step['throughput_mbps']:.1f} Mbit/s" if step.get("throughput_mbps") else "")
                + (f"  id {step['request_id']}" if step.get("request_id") else "")
                + (f"  {step['error_code']}" if step.get("error_code") else ""))
    oracle = target.get("oracle")
    if oracle:
        reads = ", ".join(f"{r['key']}: {r['outcome']}" for r in oracle.get("readings", []))
        said = (f"S3 says {oracle['path'] or 'through an endpoint'}"
                + (f" via {oracle['vpce_id']}" if oracle.get("vpce_id") else "")
                if oracle.get("conclusive") else f"inconclusive ({oracle.get('kind')})")
        agrees = {True: "; confirms the prediction", False: "; CONTRADICTS the prediction",
                  None: ""}[oracle.get("agrees_with_prediction")]
        lines.append(f"  oracle: {said}{agrees} ({reads} through {oracle.get('host')})")
    probe = target.get("probe") or {}
    trace = probe.get("traceroute")
    if trace:
        if trace.get("skipped"):
            lines.append(f"  traceroute: skipped: {trace.get('reason')}")
        else:
            hops = ", ".join(f"{h['ttl']}:{h.get('address') or '*'}"
                             + (f"({h['kind']})" if h.get("kind") not in (None, "silent") else "")
                             for h in trace.get("hops", []))
            lines.append(f"  traceroute tcp/{trace['port']} to {trace['destination']}: {hops}")
    sniff = probe.get("sniffer")
    if sniff:
        if sniff.get("skipped"):
            lines.append(f"  sniffer: skipped: {sniff.get('reason')}")
        else:
            syns = ", ".join(f"{s['dst']}:{s['dport']} on {s.get('iface')}"
                             for s in sniff.get("syns", []))
            lines.append(f"  sniffer: SYN {syns or 'none seen'}")
    return lines
