"""Prediction against evidence: does the traffic confirm the verdict? Pure.

The verdict is made from configuration (DNS answer, route table, endpoints). The transfer says
which address the connection really went to (from its socket) and whether S3 answered; the probe
says which hops the packets crossed; the path oracle (engine/oracle.py) is S3's own statement of
the path and is the strongest evidence: when it contradicts the prediction, S3's answer wins
(WARNING, or CRITICAL when the path S3 states is not the expected one). When they disagree, the configuration the verdict was made
on is out of date or incomplete (DNS changed, a route was removed, a proxy or a middlebox is in
the way), so the target becomes WARNING with the explanation, and the cached inventory must be
refreshed before the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

from s3_route_agent.engine.evidence import OracleSection, ProbeEvidence, TransferResult
from s3_route_agent.engine.model import PRIVATE_PATHS, Expect, PathKind, Status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconciliation:
    """What the evidence says about one target's verdict."""

    status: Status                   # the status the evidence asks for (at least this bad)
    confirmed: bool                  # the evidence positively matches the predicted path
    findings: tuple[str, ...] = ()   # sentences for the report's evidence
    refresh_inventory: bool = False
    contradictions: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the report's per-target ``reconcile`` section)."""
        return {"status": self.status.name, "confirmed": self.confirmed,
                "findings": list(self.findings), "contradictions": list(self.contradictions),
                "refresh_inventory": self.refresh_inventory}


def reconcile(*, path: PathKind, addresses: Iterable[str], route_target: str | None,
              transfer: TransferResult | None, probe: ProbeEvidence | None,
              nat_addresses: Iterable[str], proxy_address: str | None = None,
              oracle: OracleSection | None = None,
              expect: Expect | None = None) -> Reconciliation:
    """Compare the predicted ``path`` (made on ``addresses``) with transfer and probe evidence.

    ``route_target`` is the winning route's target of the first address (``nat-…`` tells a
    NAT path from an internet-gateway one); ``proxy_address`` is the proxy's address when the
    path is ``proxy``. ``oracle`` is the target's oracle reads (live/oracle_read.py) and
    ``expect`` the target's expectation, against which the path S3 states is judged.
    """
    expected = {proxy_address} if path is PathKind.PROXY and proxy_address else set(addresses)
    nats = set(nat_addresses)
    findings: list[str] = []
    contradictions: list[str] = []
    status = Status.OK
    confirmed = False

    peer = transfer.peer_address if transfer else None
    if transfer is not None and transfer.attempted:
        if peer and peer not in expected:
            contradictions.append(
                f"The transfer connected to {peer}, which is not among the addresses the verdict "
                f"was made on ({', '.join(sorted(expected)) or 'none'}): DNS answered differently "
                "for the client, or something in between (a proxy) carried it.")
        elif peer:
            confirmed = True
            findings.append(f"Traffic confirms the prediction: the transfer's connection went to "
                            f"{peer}" + (" (the proxy)." if path is PathKind.PROXY else "."))
        if transfer.outcome == "network_error" and path is PathKind.BLOCKED:
            # Routed but dropped by a security group, network ACL or Block Public Access:
            # a connection that never completes is what the verdict predicts.
            status = Status.CRITICAL
            confirmed = True
            findings.append(f"Traffic confirms the prediction: the transfer failed on the "
                            f"network as the blocked verdict predicts ({transfer.message}).")
        elif path is PathKind.BLOCKED and transfer.outcome in ("ok", "policy_denied",
                                                              "s3_error",
                                                              "checksum_mismatch"):
            contradictions.append(
                f"The transfer reached S3 ({transfer.outcome}) although the verdict says the "
                "path is blocked: the security group, network ACL or Block Public Access facts "
                "are out of date.")
        elif transfer.outcome == "network_error":
            status = Status.CRITICAL
            findings.append(f"The transfer failed on the network: {transfer.message}.")
        elif transfer.outcome == "policy_denied":
            status = Status.WARNING
            findings.append(f"Policy denial, not a network failure: {transfer.message}.")
        elif transfer.outcome in ("s3_error", "checksum_mismatch", "interrupted"):
            status = Status.WARNING
            findings.append(f"The transfer did not complete: {transfer.message}.")

    trace = probe.traceroute if probe else None
    if trace is not None and not trace.skipped:
        intermediate = trace.intermediate_hops
        reached = any(h.reached for h in trace.hops if h.address)
        nat_hop = next((a for a in intermediate if a in nats), None)
        if path in PRIVATE_PATHS and nat_hop:
            contradictions.append(
                f"Traceroute crosses NAT gateway address {nat_hop}: the packets take the public "
                f"path, not the predicted {path.value} path (the endpoint route may have been "
                "removed since the inventory was fetched).")
        elif path in PRIVATE_PATHS and reached and not intermediate:
            confirmed = True
            findings.append(f"Traceroute reaches {trace.destination} with no hop inside "
                            f"the VPC: consistent with the {path.value} path.")
        elif path is PathKind.PUBLIC and route_target and route_target.startswith("nat-"):
            if nat_hop:
                confirmed = True
                findings.append(f"Traceroute's first hop {nat_hop} is NAT gateway {route_target}'s "
                                "private address: public via NAT confirmed.")
            elif reached and not intermediate:
                contradictions.append(
                    f"Traceroute reaches {trace.destination} without crossing a NAT "
                    f"gateway, yet the route table sends it to {route_target}: the traffic takes "
                    "another path than predicted.")

    sniff = probe.sniffer if probe else None
    if sniff is not None and not sniff.skipped and sniff.syn_destinations:
        seen = set(sniff.syn_destinations)
        if peer and peer not in seen:
            contradictions.append(f"The sniffer saw SYNs to {', '.join(sorted(seen))} but not to "
                                  f"the transfer's peer {peer}.")
        elif peer:
            findings.append(f"Sniffer: the transfer's SYN went to {peer} on "
                            f"{', '.join(sniff.interfaces or ('?',))}.")

    said = oracle.evidence if oracle else None
    if said is not None and said.conclusive:
        sentence = " ".join(said.evidence)
        if said.agrees is False:
            contradictions.insert(0, f"Path oracle (S3's own answer, strongest evidence): "
                                     f"{sentence}")
            if said.path is not None and expect is not None and not expect.allows(said.path):
                status = Status.worst([status, Status.CRITICAL])
                findings.append(f"S3 states the path is {said.path.value}; expected "
                                f"{expect.value}.")
        else:
            findings.insert(0, f"Path oracle (S3's own answer): {sentence}")
    elif said is not None and said.kind in ("network", "setup"):
        findings.append("Path oracle: " + " ".join(said.evidence))

    if contradictions:
        status = Status.worst([status, Status.WARNING])
        confirmed = False
    elif said is not None and said.conclusive and said.agrees:
        confirmed = True

    return Reconciliation(status=status, confirmed=confirmed,
                          findings=tuple(contradictions + findings),
                          refresh_inventory=bool(contradictions),
                          contradictions=tuple(contradictions))
