"""Table-driven tests of the pure verdict engine: route priority and every path value."""

from __future__ import annotations

import pytest

from s3_route_agent.engine.model import (DnsAnswer, DnsFailure, Expect, Facts, Identity, Inventory,
                         NetworkInterface, PathKind, PrefixList, ResolvedAddress, Route, RouteOrigin,
                         RouteTable, RouteTargetKind, S3Range, Status, Target, VpcEndpoint)
from s3_route_agent.engine.routes import S3RangeIndex, route_for_address
from s3_route_agent.engine.verdict import (evaluate, overall_status, path_for_address,
                                           verdict_for_target)

K = RouteTargetKind
REGION = "eu-west-1"
VPC = "vpc-1"
SUBNET = "subnet-1"
S3_PL = PrefixList("pl-s3", f"com.amazonaws.{REGION}.s3", 3, ("198.51.100.0/25",))
GW = VpcEndpoint("vpce-gw", "Gateway", f"com.amazonaws.{REGION}.s3", "available", VPC,
                 route_table_ids=("rtb-app",))
IFACE = VpcEndpoint("vpce-if", "Interface", f"com.amazonaws.{REGION}.s3", "available", VPC,
                    network_interface_ids=("eni-if",))
IFACE_ENI = NetworkInterface("eni-if", VPC, "subnet-e", "vpc_endpoint", "", ("10.0.2.50",),
                             "vpce-if")
REMOTE_ENI = NetworkInterface("eni-far", "vpc-hub", "subnet-h", "vpc_endpoint",
                              "VPC Endpoint Interface vpce-hub", ("10.1.2.60",), "vpce-hub")
HUB_IFACE = VpcEndpoint("vpce-hub", "Interface", f"com.amazonaws.{REGION}.s3", "available",
                        "vpc-hub", network_interface_ids=("eni-far",))
PLAIN_ENI = NetworkInterface("eni-proxy", VPC, SUBNET, "interface", "", ("10.0.1.99",), None)
RANGES = (S3Range("198.51.100.0/25", REGION), S3Range("203.0.113.0/25", "us-east-1"),
          S3Range("2001:db8:e1::/48", REGION))
IDENTITY = Identity(region=REGION, vpc_id=VPC, subnet_id=SUBNET)


def r(dest: str, target: str, kind: K, origin: RouteOrigin = RouteOrigin.STATIC,
      state: str = "active") -> Route:
    return Route(dest, target, kind, origin, state)


LOCAL = r("10.0.0.0/16", "local", K.LOCAL)
DEFAULT_NAT = r("0.0.0.0/0", "nat-1", K.NAT_GATEWAY)
PL_ROUTE = r("pl-s3", "vpce-gw", K.GATEWAY_ENDPOINT)


def inventory(*routes: Route, endpoints=(GW, IFACE), interfaces=(IFACE_ENI,),
              prefix_lists=(S3_PL,), association: str = "explicit", remote_endpoints=(),
              non_s3_endpoint_ids=()) -> Inventory:
    return Inventory(REGION, VPC, SUBNET, RouteTable("rtb-app", VPC, association, tuple(routes)),
                     tuple(prefix_lists), tuple(endpoints), tuple(interfaces), fetched_at=1.0,
                     s3_prefix_list_id="pl-s3", remote_endpoints=tuple(remote_endpoints),
                     non_s3_endpoint_ids=tuple(non_s3_endpoint_ids))


def facts(inv: Inventory | None, **kw) -> Facts:
    return Facts(identity=IDENTITY, inventory=inv, s3_ranges=RANGES, **kw)


# --- route priority ---------------------------------------------------------------------------

PRIORITY_CASES = [
    # (id, routes, address, expected winning target)
    ("longest prefix beats default", [DEFAULT_NAT, r("198.51.100.0/24", "igw-1", K.INTERNET_GATEWAY)],
     "198.51.100.10", "igw-1"),
    ("prefix-list entry /25 beats /0", [DEFAULT_NAT, PL_ROUTE], "198.51.100.10", "vpce-gw"),
    ("more specific CIDR beats prefix-list route",
     [PL_ROUTE, r("198.51.100.0/26", "tgw-1", K.TRANSIT_GATEWAY)], "198.51.100.10", "tgw-1"),
    ("equal length: static beats prefix list",
     [PL_ROUTE, r("198.51.100.0/25", "pcx-1", K.PEERING_CONNECTION)], "198.51.100.10", "pcx-1"),
    ("equal length: prefix list beats propagated",
     [PL_ROUTE, r("198.51.100.0/25", "vgw-1", K.VIRTUAL_PRIVATE_GATEWAY, RouteOrigin.PROPAGATED)],
     "198.51.100.10", "vpce-gw"),
    ("equal length: static beats propagated",
     [r("203.0.113.0/25", "vgw-1", K.VIRTUAL_PRIVATE_GATEWAY, RouteOrigin.PROPAGATED),
      r("203.0.113.0/25", "nat-2", K.NAT_GATEWAY)], "203.0.113.10", "nat-2"),
    ("propagated: Direct Connect beats VPN static",
     [r("203.0.113.0/25", "vgw-vpn", K.VIRTUAL_PRIVATE_GATEWAY, RouteOrigin.PROPAGATED_VPN_STATIC),
      r("203.0.113.0/25", "vgw-dx", K.VIRTUAL_PRIVATE_GATEWAY, RouteOrigin.PROPAGATED_DX)],
     "203.0.113.10", "vgw-dx"),
    ("propagated: VPN static beats VPN BGP",
     [r("203.0.113.0/25", "vgw-bgp", K.VIRTUAL_PRIVATE_GATEWAY, RouteOrigin.PROPAGATED_VPN_BGP),
      r("203.0.113.0/25", "vgw-st", K.VIRTUAL_PRIVATE_GATEWAY, RouteOrigin.PROPAGATED_VPN_STATIC)],
     "203.0.113.10", "vgw-st"),
    ("propagated more specific beats static less specific",
     [DEFAULT_NAT, r("203.0.113.0/25", "vgw-1", K.VIRTUAL_PRIVATE_GATEWAY, RouteOrigin.PROPAGATED)],
     "203.0.113.10", "vgw-1"),
    ("IPv6 address ignores IPv4 default", [DEFAULT_NAT, r("::/0", "eigw-1",
                                                           K.EGRESS_ONLY_INTERNET_GATEWAY)],
     "2001:db8:e1::10", "eigw-1"),
    ("IPv4 address ignores IPv6 routes", [r("::/0", "igw-1", K.INTERNET_GATEWAY), DEFAULT_NAT],
     "203.0.113.10", "nat-1"),
    ("local route for VPC addresses", [LOCAL, DEFAULT_NAT], "10.0.2.50", "local"),
]


@pytest.mark.parametrize("routes,ip,winner", [c[1:] for c in PRIORITY_CASES],
                         ids=[c[0] for c in PRIORITY_CASES])
def test_route_priority(routes, ip, winner):
    match, unknown = route_for_address(ip, routes, inventory(*routes))
    assert match is not None and match.route.target_id == winner
    assert unknown == ()
    assert match.rule  # every match explains itself


def test_no_matching_route_in_family():
    match, _ = route_for_address("2001:db8:e1::10", [DEFAULT_NAT], inventory(DEFAULT_NAT))
    assert match is None


def test_prefix_list_without_entries_is_reported_unknown():
    inv = inventory(PL_ROUTE, prefix_lists=())
    match, unknown = route_for_address("198.51.100.10", [PL_ROUTE], inv)
    assert match is None and unknown == ("pl-s3",)
    verdict = path_for_address("198.51.100.10", facts(inv), S3RangeIndex(RANGES))
    assert verdict.path is PathKind.UNKNOWN


def test_equal_length_rule_is_named_in_evidence():
    routes = [PL_ROUTE, r("198.51.100.0/25", "pcx-1", K.PEERING_CONNECTION)]
    match, _ = route_for_address("198.51.100.10", routes, inventory(*routes))
    assert "static routes beat prefix-list routes" in match.rule


# --- path per address -------------------------------------------------------------------------

PATH_CASES = [
    ("gateway", inventory(LOCAL, DEFAULT_NAT, PL_ROUTE), "198.51.100.10", PathKind.GATEWAY, "vpce-gw"),
    ("interface in this VPC", inventory(LOCAL, DEFAULT_NAT, PL_ROUTE), "10.0.2.50",
     PathKind.INTERFACE, "vpce-if"),
    ("interface in another VPC via TGW",
     inventory(LOCAL, DEFAULT_NAT, r("10.1.0.0/16", "tgw-1", K.TRANSIT_GATEWAY),
               interfaces=(IFACE_ENI, REMOTE_ENI), remote_endpoints=(HUB_IFACE,)), "10.1.2.60",
     PathKind.INTERFACE, "vpce-hub"),
    # Issue 10 section 4: another VPC's endpoint ENI is never taken for an S3 interface
    # endpoint unless that endpoint was described and serves S3.
    ("ENI of another VPC's non-S3 endpoint",
     inventory(LOCAL, DEFAULT_NAT, r("10.1.0.0/16", "tgw-1", K.TRANSIT_GATEWAY),
               interfaces=(IFACE_ENI, REMOTE_ENI), non_s3_endpoint_ids=("vpce-hub",)),
     "10.1.2.60", PathKind.UNKNOWN, "vpce-hub"),
    ("ENI of another VPC's endpoint that was not described",
     inventory(LOCAL, DEFAULT_NAT, r("10.1.0.0/16", "tgw-1", K.TRANSIT_GATEWAY),
               interfaces=(IFACE_ENI, REMOTE_ENI)), "10.1.2.60", PathKind.UNKNOWN, "vpce-hub"),
    ("public via NAT (other region)", inventory(LOCAL, DEFAULT_NAT, PL_ROUTE), "203.0.113.10",
     PathKind.PUBLIC, None),
    ("public via IGW", inventory(LOCAL, r("0.0.0.0/0", "igw-1", K.INTERNET_GATEWAY)),
     "198.51.100.10", PathKind.PUBLIC, None),
    ("public via egress-only IGW (IPv6)",
     inventory(LOCAL, r("::/0", "eigw-1", K.EGRESS_ONLY_INTERNET_GATEWAY)), "2001:db8:e1::10",
     PathKind.PUBLIC, None),
    ("transit via TGW", inventory(LOCAL, r("0.0.0.0/0", "tgw-1", K.TRANSIT_GATEWAY)),
     "203.0.113.10", PathKind.TRANSIT, None),
    ("transit via VGW", inventory(LOCAL, r("0.0.0.0/0", "vgw-1", K.VIRTUAL_PRIVATE_GATEWAY,
                                           RouteOrigin.PROPAGATED)), "203.0.113.10",
     PathKind.TRANSIT, None),
    ("transit via peering", inventory(LOCAL, r("0.0.0.0/0", "pcx-1", K.PEERING_CONNECTION)),
     "203.0.113.10", PathKind.TRANSIT, None),
    ("transit via network interface",
     inventory(LOCAL, r("0.0.0.0/0", "eni-fw", K.NETWORK_INTERFACE)), "203.0.113.10",
     PathKind.TRANSIT, None),
    ("local address that is not an endpoint",
     inventory(LOCAL, DEFAULT_NAT, interfaces=(IFACE_ENI, PLAIN_ENI)), "10.0.1.99",
     PathKind.TRANSIT, None),
    ("no route at all", inventory(LOCAL), "203.0.113.10", PathKind.NO_ROUTE, None),
    ("blackhole route", inventory(LOCAL, r("0.0.0.0/0", "nat-gone", K.NAT_GATEWAY,
                                           state="blackhole")), "203.0.113.10", PathKind.NO_ROUTE, None),
    ("gateway endpoint not available",
     inventory(LOCAL, PL_ROUTE, endpoints=(VpcEndpoint("vpce-gw", "Gateway", "x", "deleting", VPC),)),
     "198.51.100.10", PathKind.NO_ROUTE, "vpce-gw"),
    ("interface endpoint not available",
     inventory(LOCAL, endpoints=(GW, VpcEndpoint("vpce-if", "Interface", "x", "pending", VPC))),
     "10.0.2.50", PathKind.NO_ROUTE, "vpce-if"),
    ("IPv6 through an ipv4-only gateway endpoint",
     inventory(LOCAL, PL_ROUTE, prefix_lists=(PrefixList("pl-s3", "n", 1,
                                                         ("198.51.100.0/25", "2001:db8:e1::/48")),)),
     "2001:db8:e1::10", PathKind.NO_ROUTE, "vpce-gw"),
    ("unknown local address", inventory(LOCAL, DEFAULT_NAT), "10.0.9.9", PathKind.UNKNOWN, None),
]


@pytest.mark.parametrize("inv,ip,path,endpoint", [c[1:] for c in PATH_CASES],
                         ids=[c[0] for c in PATH_CASES])
def test_path_for_address(inv, ip, path, endpoint):
    verdict = path_for_address(ip, facts(inv), S3RangeIndex(RANGES))
    assert verdict.path is path
    assert verdict.endpoint_id == endpoint
    assert verdict.evidence


def test_non_s3_endpoint_eni_in_this_vpc_is_not_an_s3_path():
    ec2_eni = NetworkInterface("eni-ec2", VPC, "subnet-e", "vpc_endpoint",
                               "VPC Endpoint Interface vpce-ec2", ("10.0.2.61",), "vpce-ec2")
    inv = inventory(LOCAL, DEFAULT_NAT, interfaces=(IFACE_ENI, ec2_eni))
    verdict = path_for_address("10.0.2.61", facts(inv), S3RangeIndex(RANGES))
    assert verdict.path is PathKind.UNKNOWN
    assert any("not an S3 endpoint" in e for e in verdict.evidence)


def test_interface_in_other_vpc_is_flagged():
    inv = inventory(LOCAL, r("10.1.0.0/16", "tgw-1", K.TRANSIT_GATEWAY),
                    interfaces=(REMOTE_ENI,))
    verdict = path_for_address("10.1.2.60", facts(inv), S3RangeIndex(RANGES))
    assert verdict.endpoint_in_vpc is False
    assert any("tgw-1" in e for e in verdict.evidence)


def test_other_region_bypass_is_explained():
    inv = inventory(LOCAL, DEFAULT_NAT, PL_ROUTE)
    verdict = path_for_address("203.0.113.10", facts(inv), S3RangeIndex(RANGES))
    assert verdict.s3_region == "us-east-1"
    assert any("S3 in us-east-1, not eu-west-1" in e for e in verdict.evidence)


def test_missing_endpoint_route_is_explained():
    unattached = VpcEndpoint("vpce-gw", "Gateway", f"com.amazonaws.{REGION}.s3", "available", VPC)
    inv = inventory(LOCAL, DEFAULT_NAT, endpoints=(unattached,))
    verdict = path_for_address("198.51.100.10", facts(inv), S3RangeIndex(RANGES))
    assert verdict.path is PathKind.PUBLIC
    assert any("not associated with rtb-app: add rtb-app" in e for e in verdict.evidence)


def test_removed_endpoint_route_is_explained():
    inv = inventory(LOCAL, DEFAULT_NAT)  # endpoint still lists rtb-app, the route is gone
    verdict = path_for_address("198.51.100.10", facts(inv), S3RangeIndex(RANGES))
    assert verdict.path is PathKind.PUBLIC
    assert any("endpoint route was removed" in e for e in verdict.evidence)


def test_main_table_is_named():
    inv = inventory(LOCAL, DEFAULT_NAT, PL_ROUTE, association="main")
    verdict = path_for_address("198.51.100.10", facts(inv), S3RangeIndex(RANGES))
    assert any("main table" in e for e in verdict.evidence)


def test_no_inventory_is_unknown_with_reason():
    verdict = path_for_address("198.51.100.10", facts(None, problems=("EC2 denied",)),
                               S3RangeIndex(RANGES))
    assert verdict.path is PathKind.UNKNOWN
    assert any("EC2 denied" in e for e in verdict.evidence)


# --- target status ----------------------------------------------------------------------------

def answer(host: str, *ips: str) -> DnsAnswer:
    return DnsAnswer(host, tuple(ResolvedAddress(ip, "ipv6" if ":" in ip else "ipv4", 60)
                                 for ip in ips))


STATUS_CASES = [
    ("gateway meets private", Expect.PRIVATE, ("198.51.100.10",), PathKind.GATEWAY, Status.OK),
    ("gateway meets gateway", Expect.GATEWAY, ("198.51.100.10",), PathKind.GATEWAY, Status.OK),
    ("gateway fails interface", Expect.INTERFACE, ("198.51.100.10",), PathKind.GATEWAY, Status.CRITICAL),
    ("interface meets private", Expect.PRIVATE, ("10.0.2.50",), PathKind.INTERFACE, Status.OK),
    ("public fails private", Expect.PRIVATE, ("203.0.113.10",), PathKind.PUBLIC, Status.CRITICAL),
    ("public meets public", Expect.PUBLIC, ("203.0.113.10",), PathKind.PUBLIC, Status.OK),
    ("public meets any", Expect.ANY, ("203.0.113.10",), PathKind.PUBLIC, Status.OK),
    ("mixed public and gateway warns", Expect.PRIVATE, ("198.51.100.10", "203.0.113.10"),
     PathKind.MIXED, Status.WARNING),
    ("mixed gateway and interface still private", Expect.PRIVATE, ("198.51.100.10", "10.0.2.50"),
     PathKind.MIXED, Status.OK),
    ("no route fails any", Expect.ANY, ("2001:db8:e1::10",), PathKind.NO_ROUTE, Status.CRITICAL),
    ("unknown address is UNKNOWN", Expect.PRIVATE, ("10.0.9.9",), PathKind.UNKNOWN, Status.UNKNOWN),
]


@pytest.mark.parametrize("expect,ips,path,status", [c[1:] for c in STATUS_CASES],
                         ids=[c[0] for c in STATUS_CASES])
def test_target_status(expect, ips, path, status):
    target = Target("t", "bucket.s3.eu-west-1.amazonaws.com", expect)
    verdict = verdict_for_target(target, answer(target.host, *ips),
                                 facts(inventory(LOCAL, DEFAULT_NAT, PL_ROUTE)))
    assert (verdict.path, verdict.status) == (path, status)
    assert verdict.reason


@pytest.mark.parametrize("kind", ["nxdomain", "no_data", "timeout", "servfail"])
def test_unresolved_is_critical(kind):
    target = Target("t", "nope.s3.eu-west-1.amazonaws.com", Expect.ANY)
    failed = DnsAnswer(target.host, (), failure=DnsFailure(kind, f"{kind} for {target.host}"))
    verdict = verdict_for_target(target, failed, facts(inventory(LOCAL)))
    assert verdict.path is PathKind.UNRESOLVED and verdict.status is Status.CRITICAL
    assert verdict.reason == f"{kind} for {target.host}"


def test_stale_facts_warn_even_when_path_is_right():
    target = Target("t", "s3.eu-west-1.amazonaws.com", Expect.PRIVATE)
    verdict = verdict_for_target(target, answer(target.host, "198.51.100.10"),
                                 facts(inventory(LOCAL, PL_ROUTE), stale="refresh failed"))
    assert verdict.path is PathKind.GATEWAY and verdict.status is Status.WARNING
    assert any("stale" in e for e in verdict.evidence)


def test_legacy_global_name_is_explained():
    target = Target("global", "s3.amazonaws.com", Expect.PRIVATE)
    verdict = verdict_for_target(target, answer(target.host, "203.0.113.10"),
                                 facts(inventory(LOCAL, DEFAULT_NAT, PL_ROUTE)))
    assert verdict.path is PathKind.PUBLIC and verdict.status is Status.CRITICAL
    assert any("legacy global S3 name" in e for e in verdict.evidence)
    assert "nat-1" in verdict.reason and "us-east-1" in verdict.reason


def test_overall_status_is_worst():
    inv = inventory(LOCAL, DEFAULT_NAT, PL_ROUTE)
    targets = [Target("a", "a.example", Expect.PRIVATE), Target("b", "b.example", Expect.PRIVATE)]
    verdicts = evaluate(targets, {"a.example": answer("a.example", "198.51.100.10"),
                                  "b.example": answer("b.example", "203.0.113.10")}, facts(inv))
    assert overall_status(verdicts) is Status.CRITICAL
    assert overall_status((), ["EC2 unreachable"]) is Status.UNKNOWN


def test_range_index_prefers_most_specific():
    index = S3RangeIndex((S3Range("198.51.100.0/24", "GLOBAL"), S3Range("198.51.100.0/25", REGION)))
    assert index.region_for("198.51.100.5") == REGION
    assert index.region_for("198.51.100.200") == "GLOBAL"
    assert index.region_for("192.0.2.1") is None
