"""Live evidence, typed: what the proxy rules, the test transfer, the packet probes, the path
oracle and the flow logs say about a target. Pure data, frozen; built by ``live/`` and
``collectors/``, judged by :mod:`s3_route_agent.engine.reconcile`, read by the report and the sinks.

Each class writes its report section with ``to_dict``; the JSON Schema
(``agent/report/report.schema.json``) describes the same shapes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from s3_route_agent.engine.model import RouteMatch
from s3_route_agent.engine.oracle import OracleEvidence
from s3_route_agent.engine.proxy import ProxyDecision

logger = logging.getLogger(__name__)


# ---- proxies -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProxyRoute:
    """Where the proxy itself sits: its address and the path traffic to that address takes."""

    address: str | None
    path: str | None = None          # a PathKind value, or "local": the proxy is inside the VPC
    route: RouteMatch | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``proxy_path`` part of the proxy section)."""
        return {"address": self.address, "path": self.path,
                "route": self.route.to_dict() if self.route else None}


@dataclass(frozen=True)
class ProxyEvidence:
    """Whether a normal boto3 client sends the target's traffic through a proxy, and where."""

    decision: ProxyDecision
    proxy_route: ProxyRoute | None = None   # set when the traffic goes through the proxy

    @property
    def proxy_address(self) -> str | None:
        """The proxy's address, when the traffic goes through it and the address is known."""
        return self.proxy_route.address if self.proxy_route else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the target's ``proxy`` section)."""
        out = self.decision.to_dict()
        if self.decision.proxied:
            out.update(proxy_address=self.proxy_address,
                       proxy_path=self.proxy_route.to_dict() if self.proxy_route else None)
        return out


# ---- the test transfer -------------------------------------------------------------------------

@dataclass(frozen=True)
class TransferPlan:
    """How a normal boto3 client reaches the bucket through a target's hostname."""

    host: str
    bucket: str
    endpoint_url: str
    addressing_style: str            # "virtual" or "path"
    signing_region: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"host": self.host, "bucket": self.bucket, "endpoint_url": self.endpoint_url,
                "addressing_style": self.addressing_style, "signing_region": self.signing_region}


_ROUNDED_MS = ("dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "total_ms")


@dataclass(frozen=True)
class TransferStep:
    """One request of the transfer and what its connection looked like."""

    step: str                        # "cleanup", "put", "get", "delete"
    ok: bool = False
    http_status: int | None = None
    request_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None
    total_ms: float | None = None
    bytes: int = 0
    throughput_mbps: float | None = None
    peer_address: str | None = None
    peer_port: int | None = None
    local_address: str | None = None
    resolved: tuple[str, ...] = ()
    served_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (milliseconds rounded to 0.1, throughput to 0.01)."""
        out: dict[str, Any] = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for key in _ROUNDED_MS:
            if out[key] is not None:
                out[key] = round(out[key], 1)
        if out["throughput_mbps"] is not None:
            out["throughput_mbps"] = round(out["throughput_mbps"], 2)
        out["resolved"] = list(self.resolved)
        return out


# Outcomes of a transfer (the report's ``transfer.outcome``).
TRANSFER_OUTCOMES = ("ok", "policy_denied", "network_error", "s3_error", "checksum_mismatch",
                     "interrupted", "skipped")


@dataclass(frozen=True)
class TransferResult:
    """The whole test transfer for one target: its steps, outcome and total duration."""

    host: str
    outcome: str                     # one of TRANSFER_OUTCOMES
    message: str
    plan: TransferPlan | None = None
    key: str | None = None
    size_bytes: int = 0
    steps: tuple[TransferStep, ...] = ()
    checksum_match: bool | None = None
    canary_deleted: bool | None = None
    stale_canaries_removed: int = 0
    duration_seconds: float | None = None   # wall time of every step together; None if skipped

    @classmethod
    def skipped(cls, host: str, why: str) -> "TransferResult":
        """A transfer that was not attempted, with the reason."""
        return cls(host=host, outcome="skipped", message=why)

    @property
    def ok(self) -> bool:
        """True when PUT, GET (checksum equal) and DELETE all worked."""
        return self.outcome == "ok"

    @property
    def attempted(self) -> bool:
        """True when the transfer sent requests (it was not skipped)."""
        return self.outcome != "skipped"

    @property
    def peer_address(self) -> str | None:
        """The address the transfer's connections really went to (first step that connected)."""
        return next((s.peer_address for s in self.steps if s.peer_address), None)

    def step(self, name: str) -> TransferStep | None:
        """The step called ``name`` ("put", "get", ...), if it ran."""
        return next((s for s in self.steps if s.step == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the target's ``transfer`` section)."""
        return {"host": self.host, "outcome": self.outcome, "ok": self.ok,
                "message": self.message, "plan": self.plan.to_dict() if self.plan else None,
                "key": self.key, "size_bytes": self.size_bytes,
                "duration_ms": (round(self.duration_seconds * 1000, 1)
                                if self.duration_seconds is not None else None),
                "peer_address": self.peer_address, "checksum_match": self.checksum_match,
                "canary_deleted": self.canary_deleted,
                "stale_canaries_removed": self.stale_canaries_removed,
                "steps": [s.to_dict() for s in self.steps]}


# ---- the path oracle ---------------------------------------------------------------------------

@dataclass(frozen=True)
class OracleRead:
    """One GET of an oracle key and where its connection went."""

    key: str
    outcome: str                     # "200", "AccessDenied", another code, or a network error
    http_status: int | None = None
    peer_address: str | None = None
    served_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "outcome": self.outcome, "http_status": self.http_status,
                "peer_address": self.peer_address, "served_by": self.served_by}


@dataclass(frozen=True)
class OracleSection:
    """The oracle reads through a target's name and what S3's answers say about the path."""

    bucket: str
    prefix: str
    host: str | None
    reads: tuple[OracleRead, ...]
    evidence: OracleEvidence

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the target's ``oracle`` section)."""
        return {"bucket": self.bucket, "prefix": self.prefix, "host": self.host,
                "readings": [r.to_dict() for r in self.reads], **self.evidence.to_dict()}


# ---- packet probes -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Hop:
    """One TTL of the SYN traceroute."""

    ttl: int
    address: str | None
    reached: bool = False
    rtt_ms: float | None = None
    kind: str = "silent"             # "destination", "nat", "other", "silent"
    tcp_flags: str | None = None     # the destination's answer (SYN-ACK "SA", RST "R", ...)
    unreachable: bool = False        # ICMP destination unreachable ended the trace

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {"ttl": self.ttl, "address": self.address, "reached": self.reached,
                               "rtt_ms": self.rtt_ms, "kind": self.kind}
        if self.tcp_flags is not None:
            out["tcp_flags"] = self.tcp_flags
        if self.unreachable:
            out["unreachable"] = True
        return out


@dataclass(frozen=True)
class Traceroute:
    """A TCP SYN traceroute to one address, or why it was skipped."""

    destination: str | None
    port: int | None
    skipped: bool = False
    reason: str | None = None        # why it was skipped
    max_hops: int | None = None
    hops: tuple[Hop, ...] = ()
    reached: bool = False
    first_hop_is_nat: bool = False

    @classmethod
    def skip(cls, reason: str, destination: str | None = None,
             port: int | None = None) -> "Traceroute":
        """A traceroute that did not run, with the reason."""
        return cls(destination=destination, port=port, skipped=True, reason=reason)

    @property
    def first_hop(self) -> str | None:
        """The first hop that answered."""
        return next((h.address for h in self.hops if h.address), None)

    @property
    def intermediate_hops(self) -> tuple[str, ...]:
        """Addresses of the hops that answered before the destination."""
        return tuple(h.address for h in self.hops if h.address and not h.reached)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        if self.skipped:
            return {"skipped": True, "reason": self.reason, "destination": self.destination,
                    "port": self.port}
        return {"skipped": False, "destination": self.destination, "port": self.port,
                "max_hops": self.max_hops, "hops": [h.to_dict() for h in self.hops],
                "reached": self.reached, "first_hop": self.first_hop,
                "first_hop_is_nat": self.first_hop_is_nat,
                "intermediate_hops": list(self.intermediate_hops)}


@dataclass(frozen=True)
class SynSeen:
    """An outgoing TCP SYN the sniffer saw."""

    dst: str
    dport: int
    iface: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"dst": self.dst, "dport": self.dport, "iface": self.iface}


@dataclass(frozen=True)
class SnifferResult:
    """The SYNs the sniffer saw during the transfer, or why it did not run."""

    skipped: bool = False
    reason: str | None = None
    syns: tuple[SynSeen, ...] = ()

    @classmethod
    def skip(cls, reason: str) -> "SnifferResult":
        """A sniffer that did not run, with the reason."""
        return cls(skipped=True, reason=reason)

    @property
    def syn_destinations(self) -> tuple[str, ...]:
        """Every address a SYN went to, sorted."""
        return tuple(sorted({s.dst for s in self.syns}))

    @property
    def interfaces(self) -> tuple[str, ...]:
        """Every interface a SYN left by, sorted."""
        return tuple(sorted({s.iface for s in self.syns if s.iface}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        if self.skipped:
            return {"skipped": True, "reason": self.reason}
        return {"skipped": False, "syns": [s.to_dict() for s in self.syns],
                "syn_destinations": list(self.syn_destinations),
                "interfaces": list(self.interfaces)}


@dataclass(frozen=True)
class ProbeEvidence:
    """The packet probes of one target."""

    traceroute: Traceroute | None = None
    sniffer: SnifferResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the target's ``probe`` section)."""
        return {"traceroute": self.traceroute.to_dict() if self.traceroute else None,
                "sniffer": self.sniffer.to_dict() if self.sniffer else None}


# ---- flow logs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlowRecord:
    """One flow-log record of a test transfer's flow."""

    srcaddr: str
    dstaddr: str
    dstport: str
    action: str
    traffic_path: str
    pkt_dst_aws_service: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"srcaddr": self.srcaddr, "dstaddr": self.dstaddr, "dstport": self.dstport,
                "action": self.action, "traffic_path": self.traffic_path,
                "pkt_dst_aws_service": self.pkt_dst_aws_service}


@dataclass(frozen=True)
class Corroboration:
    """What the flow logs said about one earlier run's test transfer."""

    corroborates_run: str
    status: str                      # "found", "no_records", "expired", "failed"
    traffic_paths: tuple[str, ...] = ()
    path: str | None = None          # "gateway", "public", "interface_or_nat", "mixed" or None
    flows: tuple[FlowRecord, ...] = ()
    evidence: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (one item of the report's ``flow_logs``)."""
        return {"corroborates_run": self.corroborates_run, "status": self.status,
                "traffic_paths": list(self.traffic_paths), "path": self.path,
                "flows": [f.to_dict() for f in self.flows], "evidence": list(self.evidence)}

