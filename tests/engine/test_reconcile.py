"""Reconciliation rules, one table row per rule."""

from __future__ import annotations

import pytest

from s3_route_agent.engine.evidence import (Hop, OracleSection, ProbeEvidence, SnifferResult,
                                            SynSeen, Traceroute, TransferResult, TransferStep)
from s3_route_agent.engine.model import Expect, PathKind, Status
from s3_route_agent.engine.oracle import OracleEvidence
from s3_route_agent.engine.reconcile import reconcile

GW = "198.51.100.11"
ENI = "10.0.2.50"
NAT = "10.0.0.5"


def _transfer(peer: str | None, outcome: str = "ok", message: str = "") -> TransferResult:
    steps = (TransferStep("put", ok=outcome == "ok", peer_address=peer),) if peer else ()
    return TransferResult(host="h", outcome=outcome, message=message, steps=steps)


def _trace(*hops: tuple[str | None, bool], destination: str = GW) -> ProbeEvidence:
    return ProbeEvidence(traceroute=Traceroute(destination=destination, port=443, hops=tuple(
        Hop(ttl=i + 1, address=a, reached=r) for i, (a, r) in enumerate(hops))))


# (name, path, addresses, route target, transfer, probe, proxy, status, confirmed, refresh, phrase)
RULES = [
    ("peer matches, direct trace", PathKind.GATEWAY, [GW], "vpce-1", _transfer(GW),
     _trace((GW, True)), None, Status.OK, True, False, "no hop inside the VPC"),
    ("peer outside the verdict's addresses", PathKind.GATEWAY, [GW], "vpce-1",
     _transfer("198.51.100.99"), None, None, Status.WARNING, False, True, "not among the addresses"),
    ("NAT hop on a gateway prediction", PathKind.GATEWAY, [GW], "vpce-1", _transfer(GW),
     _trace((NAT, False), (GW, True)), None, Status.WARNING, False, True, "crosses NAT gateway"),
    ("NAT hop on an interface prediction", PathKind.INTERFACE, [ENI], None, _transfer(ENI),
     _trace((NAT, False), (ENI, True), destination=ENI), None, Status.WARNING, False, True,
     "crosses NAT gateway"),
    ("NAT hop confirms public via NAT", PathKind.PUBLIC, [GW], "nat-1", _transfer(GW),
     _trace((NAT, False), (GW, True)), None, Status.OK, True, False, "public via NAT confirmed"),
    ("public via NAT predicted, no NAT hop", PathKind.PUBLIC, [GW], "nat-1", _transfer(GW),
     _trace((GW, True)), None, Status.WARNING, False, True, "without crossing a NAT"),
    ("public via IGW: no NAT hop expected", PathKind.PUBLIC, [GW], "igw-1", _transfer(GW),
     _trace((GW, True)), None, Status.OK, True, False, "confirms the prediction"),
    ("proxy path: peer is the proxy", PathKind.PROXY, [GW], "vpce-1", _transfer("10.0.1.20"),
     None, "10.0.1.20", Status.OK, True, False, "(the proxy)"),
    ("proxy path: peer is not the proxy", PathKind.PROXY, [GW], "vpce-1", _transfer(GW),
     None, "10.0.1.20", Status.WARNING, False, True, "not among the addresses"),
    ("policy denial is not a network failure", PathKind.GATEWAY, [GW], "vpce-1",
     _transfer(GW, "policy_denied", "S3 refused the PUT (AccessDenied)"), None, None,
     Status.WARNING, True, False, "Policy denial, not a network failure"),
    ("network failure", PathKind.GATEWAY, [GW], "vpce-1",
     _transfer(GW, "network_error", "timed out"), None, None, Status.CRITICAL, True, False,
     "failed on the network"),
    # Issue 10: a blocked verdict predicts a connection that never completes.
    ("blocked: the transfer fails on the network, as predicted", PathKind.BLOCKED, [GW],
     "vpce-1", _transfer(None, "network_error", "PUT failed on the network: timed out"), None,
     None, Status.CRITICAL, True, False, "as the blocked verdict predicts"),
    ("blocked, yet S3 answered: stale filter facts", PathKind.BLOCKED, [GW], "vpce-1",
     _transfer(GW), None, None, Status.WARNING, False, True, "although the verdict says"),
    ("no evidence: nothing to say", PathKind.GATEWAY, [GW], "vpce-1", None, None, None,
     Status.OK, False, False, None),
    ("skipped transfer: nothing to say", PathKind.GATEWAY, [GW], "vpce-1",
     _transfer(None, "skipped", "mrap name"), None, None, Status.OK, False, False, None),
    ("skipped traceroute is no evidence", PathKind.GATEWAY, [GW], "vpce-1", None,
     ProbeEvidence(traceroute=Traceroute.skip("no CAP_NET_RAW")), None, Status.OK, False,
     False, None),
    ("sniffer saw a SYN elsewhere", PathKind.GATEWAY, [GW], "vpce-1", _transfer(GW),
     ProbeEvidence(sniffer=SnifferResult(syns=(SynSeen("198.51.100.99", 443, "eth0"),))), None,
     Status.WARNING, False, True, "not to the transfer's peer"),
]


@pytest.mark.parametrize("name,path,addresses,route,transfer,probe,proxy,status,confirmed,"
                         "refresh,phrase", RULES, ids=[r[0] for r in RULES])
def test_rule(name, path, addresses, route, transfer, probe, proxy, status, confirmed, refresh,
              phrase) -> None:
    """Each rule's status, confirmation, refresh flag and explanation."""
    result = reconcile(path=path, addresses=addresses, route_target=route, transfer=transfer,
                       probe=probe, nat_addresses=[NAT], proxy_address=proxy)
    assert result.status is status
    assert result.confirmed is confirmed
    assert result.refresh_inventory is refresh
    text = " ".join(result.findings)
    if phrase:
        assert phrase in text
    else:
        assert result.findings == ()
    assert bool(result.contradictions) is refresh
    assert result.to_dict()["status"] == status.name


# --- the path oracle: S3's own statement outranks the prediction -------------------------------

def _oracle(path: str | None, agrees: bool | None, conclusive: bool = True,
            kind: str = "policy") -> OracleSection:
    said = OracleEvidence(conclusive=conclusive, through_endpoint=None, vpce_id=None,
                          path=PathKind(path) if path else None, agrees=agrees, kind=kind,
                          evidence=(f"S3 says {path}.",))
    return OracleSection(bucket="b", prefix="oracle/", host="h", reads=(), evidence=said)


# (name, predicted path, oracle, expect, status, confirmed, refresh)
ORACLE_RULES = [
    ("oracle confirms", PathKind.GATEWAY, _oracle("gateway", True), Expect.GATEWAY, Status.OK, True,
     False),
    ("oracle says public, gateway expected", PathKind.GATEWAY, _oracle("public", False),
     Expect.GATEWAY, Status.CRITICAL, False, True),
    ("oracle says gateway, public predicted but private expected", PathKind.PUBLIC,
     _oracle("gateway", False), Expect.PRIVATE, Status.WARNING, False, True),
    ("oracle not set up changes nothing", PathKind.GATEWAY,
     _oracle(None, None, conclusive=False, kind="setup"), Expect.GATEWAY, Status.OK, False,
     False),
]


@pytest.mark.parametrize("rule", ORACLE_RULES, ids=[r[0] for r in ORACLE_RULES])
def test_oracle_rules(rule):
    _, path, oracle, expect, status, confirmed, refresh = rule
    result = reconcile(path=path, addresses=[GW], route_target="vpce-1", transfer=None,
                       probe=None, nat_addresses=[NAT], oracle=oracle, expect=expect)
    assert (result.status, result.confirmed, result.refresh_inventory) ==\
        (status, confirmed, refresh)
    assert any("Path oracle" in f for f in result.findings)
