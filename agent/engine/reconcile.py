"""Prediction against evidence: does the traffic confirm the verdict? Pure.

The verdict is made from configuration (DNS answer, route table, endpoints). The transfer says
which address the connection really went to (from its socket) and whether S3 answered; the probe
says which hops the packets crossed; the path oracle (agent/oracle.py) is S3's own statement of
the path and is the strongest evidence: when it contradicts the prediction, S3's answer wins
(WARNING, or CRITICAL when the path S3 states is not the expected one). When they disagree, the configuration the verdict was made
on is out of date or incomplete (DNS changed, a route was removed, a proxy or a middlebox is in
the way), so the target becomes WARNING with the explanation, and the cached inventory must be
refreshed before the next run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from s3_route_agent.engine.model import Expect, PathKind, Status

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
              transfer: Mapping[str, Any] | None, probe: Mapping[str, Any] | None,
              nat_addresses: Iterable[str], proxy_address: str | None = None,
              oracle: Mapping[str, Any] | None = None,
              expect: Expect | None = None) -> Reconciliation:
    """Compare the predicted ``path`` (made on ``addresses``) with transfer and probe evidence.

    ``route_target`` is the winning route's target of the first address (``nat-…`` tells a
    NAT path from an internet-gateway one); ``proxy_address`` is the proxy's address when the
    path is ``proxy``. ``oracle`` is the target's oracle section (s3_route_agent.live.oracle_read) and
    ``expect`` the target's expectation, against which the path S3 states is judged.
    """
    expected = {proxy_address} if path is PathKind.PROXY and proxy_address else set(addresses)
    nats = set(nat_addresses)
    findings: list[str] = []
    contradictions: list[str] = []
    status = Status.OK
    confirmed = False

    peer = transfer.get("peer_address") if transfer else None
    outcome = transfer.get("outcome") if transfer else None
    if transfer and outcome != "skipped":
        if peer and peer not in expected:
            contradictions.append(
                f"The transfer connected to {peer}, which is not among the addresses the verdict "
                f"was made on ({', '.join(sorted(expected)) or 'none'}): DNS answered differently "
                "for the client, or something in between (a proxy) carried it.")
        elif peer:
            confirmed = True
            findings.append(f"Traffic confirms the prediction: the transfer's connection went to "
                            f"{peer}" + (" (the proxy)." if path is PathKind.PROXY else "."))
        if outcome == "network_error":
            status = Status.CRITICAL
            findings.append(f"The transfer failed on the network: {transfer.get('message')}.")
        elif outcome == "policy_denied":
            status = Status.WARNING
            findings.append(f"Policy denial, not a network failure: {transfer.get('message')}.")
        elif outcome in ("s3_error", "checksum_mismatch", "interrupted"):
            status = Status.WARNING
            findings.append(f"The transfer did not complete: {transfer.get('message')}.")

    trace = (probe or {}).get("traceroute") or {}
    if trace and not trace.get("skipped"):
        hops = [h for h in trace.get("hops", []) if h.get("address")]
        intermediate = [h["address"] for h in hops if not h.get("reached")]
        reached = any(h.get("reached") for h in hops)
        nat_hop = next((a for a in intermediate if a in nats), None)
        if path in (PathKind.GATEWAY, PathKind.INTERFACE) and nat_hop:
            contradictions.append(
                f"Traceroute crosses NAT gateway address {nat_hop}: the packets take the public "
                f"path, not the predicted {path.value} path (the endpoint route may have been "
                "removed since the inventory was fetched).")
        elif path in (PathKind.GATEWAY, PathKind.INTERFACE) and reached and not intermediate:
            confirmed = True
            findings.append(f"Traceroute reaches {trace.get('destination')} with no hop inside "
                            f"the VPC: consistent with the {path.value} path.")
        elif path is PathKind.PUBLIC and route_target and route_target.startswith("nat-"):
            if nat_hop:
                confirmed = True
                findings.append(f"Traceroute's first hop {nat_hop} is NAT gateway {route_target}'s "
                                "private address: public via NAT confirmed.")
            elif reached and not intermediate:
                contradictions.append(
                    f"Traceroute reaches {trace.get('destination')} without crossing a NAT "
                    f"gateway, yet the route table sends it to {route_target}: the traffic takes "
                    "another path than predicted.")

    sniff = (probe or {}).get("sniffer") or {}
    if sniff and not sniff.get("skipped") and sniff.get("syn_destinations"):
        seen = set(sniff["syn_destinations"])
        if peer and peer not in seen:
            contradictions.append(f"The sniffer saw SYNs to {', '.join(sorted(seen))} but not to "
                                  f"the transfer's peer {peer}.")
        elif peer:
            findings.append(f"Sniffer: the transfer's SYN went to {peer} on "
                            f"{', '.join(sniff.get('interfaces') or ['?'])}.")

    if oracle and oracle.get("conclusive"):
        stated = oracle.get("path")
        agrees = oracle.get("agrees_with_prediction")
        sentence = " ".join(oracle.get("evidence") or [])
        if agrees is False:
            contradictions.insert(0, f"Path oracle (S3's own answer, strongest evidence): "
                                     f"{sentence}")
            if stated and expect is not None and not expect.allows(PathKind(stated)):
                status = Status.worst([status, Status.CRITICAL])
                findings.append(f"S3 states the path is {stated}; expected {expect.value}.")
        else:
            findings.insert(0, f"Path oracle (S3's own answer): {sentence}")
    elif oracle and oracle.get("kind") in ("network", "setup"):
        findings.append("Path oracle: " + " ".join(oracle.get("evidence") or []))

    if contradictions:
        status = Status.worst([status, Status.WARNING])
        confirmed = False
    elif oracle and oracle.get("conclusive") and oracle.get("agrees_with_prediction"):
        confirmed = True

    return Reconciliation(status=status, confirmed=confirmed,
                          findings=tuple(contradictions + findings),
                          refresh_inventory=bool(contradictions),
                          contradictions=tuple(contradictions))
