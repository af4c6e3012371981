"""Table tests of the filters the route table does not show (issue 10 section 1): security
groups, network ACLs and VPC Block Public Access, each rule of engine/filters.py, through
path_for_address and verdict_for_target. Pure: no server."""

from __future__ import annotations

import dataclasses

import jsonschema
import pytest

from s3_route_agent.engine.model import (BlockPublicAccess, BlockPublicAccessExclusion,
                                         DnsAnswer, Expect, Facts, Identity, Inventory,
                                         NatGateway, NetworkAcl, NetworkAclEntry,
                                         NetworkInterface, PathKind, PrefixList,
                                         ResolvedAddress, Route, RouteTable, RouteTargetKind,
                                         S3Range, SecurityGroupRule, Status, Target,
                                         TrafficFilters, VpcEndpoint)
from s3_route_agent.engine.filters import acl_decision
from s3_route_agent.engine.routes import S3RangeIndex
from s3_route_agent.engine.verdict import path_for_address, verdict_for_target
from s3_route_agent.report.document import report_schema

K = RouteTargetKind
REGION, VPC, SUBNET = "eu-west-1", "vpc-1", "subnet-app"
NAT_SUBNET, ENI_SUBNET = "subnet-pub", "subnet-eni"
HOST_IP = "10.0.1.10"
S3_IP, FAR_IP, ENI_IP, V6_IP = "198.51.100.10", "203.0.113.10", "10.0.2.50", "2001:db8:e1::10"
RANGES = S3RangeIndex((S3Range("198.51.100.0/25", REGION), S3Range("203.0.113.0/25", "us-east-1"),
                       S3Range("2001:db8:e1::/48", REGION)))
S3_PL = PrefixList("pl-s3", f"com.amazonaws.{REGION}.s3", 1, ("198.51.100.0/25",))
GW = VpcEndpoint("vpce-gw", "Gateway", f"com.amazonaws.{REGION}.s3", "available", VPC,
                 route_table_ids=("rtb-app",))
IFACE = VpcEndpoint("vpce-if", "Interface", f"com.amazonaws.{REGION}.s3", "available", VPC,
                    network_interface_ids=("eni-if",), security_group_ids=("sg-e",))
ENI = NetworkInterface("eni-if", VPC, ENI_SUBNET, "vpc_endpoint", "", (ENI_IP,), "vpce-if",
                       ("sg-e",))
NAT = NatGateway("nat-1", NAT_SUBNET, ("10.0.0.5",), ("203.0.113.200",))
LOCAL = Route("10.0.0.0/16", "local", K.LOCAL)
TO_NAT = Route("0.0.0.0/0", "nat-1", K.NAT_GATEWAY)
TO_IGW = Route("0.0.0.0/0", "igw-1", K.INTERNET_GATEWAY)
TO_EIGW = Route("::/0", "eigw-1", K.EGRESS_ONLY_INTERNET_GATEWAY)
TO_GW = Route("pl-s3", "vpce-gw", K.GATEWAY_ENDPOINT)

ALLOW_ALL_OUT = SecurityGroupRule("sg-h", "sgr-out", True, "-1", cidr="0.0.0.0/0")
HTTPS_TO_PL = SecurityGroupRule("sg-h", "sgr-pl", True, "tcp", 443, 443, prefix_list_id="pl-s3")
ENI_FROM_HOST_GROUP = SecurityGroupRule("sg-e", "sgr-in", False, "tcp", 443, 443,
                                        referenced_group_id="sg-h")


def acl(acl_id: str, subnets: tuple[str, ...], *entries: NetworkAclEntry) -> NetworkAcl:
    return NetworkAcl(acl_id, VPC, subnets, entries + (
        NetworkAclEntry(32767, True, "deny", "-1", "0.0.0.0/0"),
        NetworkAclEntry(32767, False, "deny", "-1", "0.0.0.0/0")))


def allow(number: int, egress: bool, cidr: str = "0.0.0.0/0", ports: tuple[int, int] | None = None,
          action: str = "allow") -> NetworkAclEntry:
    if ports is None:
        return NetworkAclEntry(number, egress, action, "-1", cidr)
    return NetworkAclEntry(number, egress, action, "6", cidr, ports[0], ports[1])


def deny(number: int, egress: bool, cidr: str = "0.0.0.0/0",
         ports: tuple[int, int] | None = None) -> NetworkAclEntry:
    return allow(number, egress, cidr, ports, "deny")


OPEN_ACL = acl("acl-open", (SUBNET, NAT_SUBNET, ENI_SUBNET), allow(100, True), allow(100, False),
               allow(101, True, "::/0"), allow(101, False, "::/0"))
BPA_OFF = BlockPublicAccess("off")


def filters(rules=(ALLOW_ALL_OUT, ENI_FROM_HOST_GROUP), acls=(OPEN_ACL,), bpa=BPA_OFF,
            groups=("sg-h",), described=("sg-h", "sg-e"), problems=(),
            addresses=(HOST_IP,)) -> TrafficFilters:
    return TrafficFilters(host_security_group_ids=groups, host_addresses=addresses,
                          security_group_rules=tuple(rules), described_groups=tuple(described),
                          network_acls=tuple(acls), block_public_access=bpa,
                          problems=tuple(problems))


def facts(routes=(LOCAL, TO_NAT, TO_GW), ephemeral=(32768, 60999), prefix_lists=(S3_PL,),
          interfaces=(ENI,), **kw) -> Facts:
    inventory = Inventory(REGION, VPC, SUBNET, RouteTable("rtb-app", VPC, "explicit",
                                                          tuple(routes)),
                          tuple(prefix_lists), (GW, IFACE), tuple(interfaces), (NAT,),
                          fetched_at=1.0, s3_prefix_list_id="pl-s3",
                          traffic_filters=filters(**kw))
    return Facts(identity=Identity(REGION, VPC, SUBNET), inventory=inventory,
                 ephemeral_ports=ephemeral)


def judge(ip: str, f: Facts, **kw):
    return path_for_address(ip, f, RANGES, **kw)


# --- security groups ------------------------------------------------------------------------

SG_CASES = [
    # (id, rules, address, path, would_take)
    ("egress all: gateway", (ALLOW_ALL_OUT,), S3_IP, PathKind.GATEWAY, None),
    ("443 to the S3 prefix list only: gateway", (HTTPS_TO_PL,), S3_IP, PathKind.GATEWAY, None),
    ("443 to the prefix list only: other region's S3 via NAT is blocked", (HTTPS_TO_PL,), FAR_IP,
     PathKind.BLOCKED, PathKind.PUBLIC),
    ("no egress rule at all", (), S3_IP, PathKind.BLOCKED, PathKind.GATEWAY),
    ("egress tcp/80 only", (SecurityGroupRule("sg-h", "sgr-80", True, "tcp", 80, 80,
                                              cidr="0.0.0.0/0"),), S3_IP, PathKind.BLOCKED,
     PathKind.GATEWAY),
    ("egress udp/443 does not carry HTTPS", (SecurityGroupRule("sg-h", "sgr-u", True, "udp", 443,
                                                               443, cidr="0.0.0.0/0"),), S3_IP,
     PathKind.BLOCKED, PathKind.GATEWAY),
    ("egress port range covering 443", (SecurityGroupRule("sg-h", "sgr-r", True, "tcp", 1, 1024,
                                                          cidr="198.51.100.0/24"),), S3_IP,
     PathKind.GATEWAY, None),
    ("an IPv6 rule does not allow IPv4", (SecurityGroupRule("sg-h", "sgr-6", True, "-1",
                                                            cidr="::/0"),), S3_IP,
     PathKind.BLOCKED, PathKind.GATEWAY),
    ("egress to the endpoint's group: interface", (SecurityGroupRule(
        "sg-h", "sgr-ref", True, "tcp", 443, 443, referenced_group_id="sg-e"),
        ENI_FROM_HOST_GROUP), ENI_IP, PathKind.INTERFACE, None),
    ("egress to the endpoint's group does not reach S3's public addresses", (SecurityGroupRule(
        "sg-h", "sgr-ref", True, "tcp", 443, 443, referenced_group_id="sg-e"),), S3_IP,
     PathKind.BLOCKED, PathKind.GATEWAY),
    ("a prefix list whose entries are unknown: unknown", (SecurityGroupRule(
        "sg-h", "sgr-x", True, "tcp", 443, 443, prefix_list_id="pl-unknown"),), S3_IP,
     PathKind.UNKNOWN, PathKind.GATEWAY),
]


@pytest.mark.parametrize("rules,ip,path,would_take", [c[1:] for c in SG_CASES],
                         ids=[c[0] for c in SG_CASES])
def test_security_group_egress(rules, ip, path, would_take):
    verdict = judge(ip, facts(rules=rules + ((ENI_FROM_HOST_GROUP,) if ENI_FROM_HOST_GROUP
                                              not in rules else ())))
    assert verdict.path is path, verdict.evidence
    assert verdict.would_take is would_take
    if path is PathKind.BLOCKED:
        (blocker,) = verdict.blocked_by
        assert (blocker.kind, blocker.id, blocker.direction) == ("security_group", "sg-h",
                                                                 "egress")
        assert f"tcp/443 to {ip}" in blocker.detail and "sg-h" in blocker.fix
    else:
        assert verdict.blocked_by == ()


def test_ipv6_rules_judge_ipv6_destinations():
    rules = (SecurityGroupRule("sg-h", "sgr-6", True, "-1", cidr="::/0"),)
    f = facts(routes=(LOCAL, TO_EIGW), rules=rules, addresses=(HOST_IP, "2001:db8:1::10"))
    assert judge(V6_IP, f).path is PathKind.PUBLIC
    only_v4 = facts(routes=(LOCAL, TO_EIGW), rules=(ALLOW_ALL_OUT,))
    assert judge(V6_IP, only_v4).blocked_by[0].kind == "security_group"


def test_blocked_gateway_fix_names_the_prefix_list():
    (blocker,) = judge(S3_IP, facts(rules=())).blocked_by
    assert "prefix list pl-s3" in blocker.fix and "authorize-security-group-egress" in blocker.fix


def test_the_groups_of_an_interface_are_aggregated():
    rules = (SecurityGroupRule("sg-b", "sgr-b", True, "tcp", 443, 443, cidr="198.51.100.0/24"),)
    verdict = judge(S3_IP, facts(rules=rules, groups=("sg-a", "sg-b"), described=("sg-a", "sg-b")))
    assert verdict.path is PathKind.GATEWAY
    assert any("sg-b allows egress" in e for e in verdict.evidence)
    blocked = judge(S3_IP, facts(rules=(), groups=("sg-a", "sg-b"), described=("sg-a", "sg-b")))
    assert blocked.blocked_by[0].id == "sg-a, sg-b"


@pytest.mark.parametrize("kw,why", [
    (dict(groups=None), "security groups are unknown"),
    (dict(problems=(("security_groups", "EC2 DescribeSecurityGroupRules denied: "
                                        "UnauthorizedOperation (add ec2:DescribeSecurityGroupRules "
                                        "to the instance role)"),)),
     "add ec2:DescribeSecurityGroupRules"),
    (dict(rules=(), described=("sg-e",)), "rules of sg-h are unknown"),
], ids=["groups unknown", "permission missing", "rules not described"])
def test_security_groups_that_cannot_be_judged_are_unknown(kw, why):
    verdict = judge(S3_IP, facts(**kw))
    assert verdict.path is PathKind.UNKNOWN and verdict.would_take is PathKind.GATEWAY
    assert why in verdict.evidence[-1]


ENI_CASES = [
    ("ingress from the host's group", (ENI_FROM_HOST_GROUP,), PathKind.INTERFACE),
    ("ingress from the host's subnet", (SecurityGroupRule("sg-e", "sgr-c", False, "tcp", 443,
                                                          443, cidr="10.0.1.0/24"),),
     PathKind.INTERFACE),
    ("ingress from another range only", (SecurityGroupRule("sg-e", "sgr-c", False, "tcp", 443,
                                                           443, cidr="10.9.0.0/16"),),
     PathKind.BLOCKED),
    ("no ingress rule", (), PathKind.BLOCKED),
    ("ingress on another port", (SecurityGroupRule("sg-e", "sgr-p", False, "tcp", 8443, 8443,
                                                   referenced_group_id="sg-h"),),
     PathKind.BLOCKED),
]


@pytest.mark.parametrize("rules,path", [c[1:] for c in ENI_CASES], ids=[c[0] for c in ENI_CASES])
def test_interface_endpoint_security_group_ingress(rules, path):
    verdict = judge(ENI_IP, facts(rules=(ALLOW_ALL_OUT,) + rules))
    assert verdict.path is path, verdict.evidence
    if path is PathKind.BLOCKED:
        (blocker,) = verdict.blocked_by
        assert (blocker.kind, blocker.id, blocker.direction) == ("security_group", "sg-e",
                                                                 "ingress")
        assert "vpce-if ENI eni-if" in blocker.where and "sg-h" in blocker.fix
        assert verdict.would_take is PathKind.INTERFACE


def test_endpoint_ingress_by_range_with_host_address_unknown_is_unknown():
    rules = (ALLOW_ALL_OUT, SecurityGroupRule("sg-e", "sgr-c", False, "tcp", 443, 443,
                                              cidr="10.0.1.0/24"))
    verdict = judge(ENI_IP, facts(rules=rules, addresses=()))
    assert verdict.path is PathKind.UNKNOWN and verdict.would_take is PathKind.INTERFACE


def test_group_references_to_another_vpcs_interface_are_unknown():
    far = NetworkInterface("eni-far", "vpc-hub", "subnet-h", "vpc_endpoint", "", ("10.1.2.60",),
                           "vpce-hub", ("sg-hub",))
    hub = VpcEndpoint("vpce-hub", "Interface", f"com.amazonaws.{REGION}.s3", "available",
                      "vpc-hub", network_interface_ids=("eni-far",))
    f = facts(routes=(LOCAL, TO_NAT, Route("10.1.0.0/16", "tgw-1", K.TRANSIT_GATEWAY)),
              interfaces=(ENI, far),
              rules=(SecurityGroupRule("sg-h", "sgr-ref", True, "tcp", 443, 443,
                                       referenced_group_id="sg-hub"),
                     SecurityGroupRule("sg-hub", "sgr-in", False, "tcp", 443, 443,
                                       cidr="10.0.0.0/16")),
              acls=(acl("acl-open", (SUBNET, "subnet-h"), allow(100, True), allow(100, False)),),
              described=("sg-h", "sg-hub"))
    f = dataclasses.replace(f, inventory=dataclasses.replace(f.inventory,
                                                             remote_endpoints=(hub,)))
    verdict = judge("10.1.2.60", f)
    assert verdict.path is PathKind.UNKNOWN and verdict.would_take is PathKind.INTERFACE


# --- network ACLs ---------------------------------------------------------------------------

HOST_ACL_CASES = [
    # (id, entries of the host subnet's ACL, path, blocking direction, rule)
    ("allow all", (allow(100, True), allow(100, False)), PathKind.GATEWAY, None, None),
    ("deny outbound 443 to S3 before the allow",
     (deny(90, True, "198.51.100.0/24", (443, 443)), allow(100, True), allow(100, False)),
     PathKind.BLOCKED, "outbound", "90"),
    ("rule number, not list order, decides",
     (allow(100, True), deny(90, True, "198.51.100.0/24", (443, 443)), allow(100, False)),
     PathKind.BLOCKED, "outbound", "90"),
    ("an allow before the deny wins",
     (allow(80, True, "198.51.100.0/24", (443, 443)), deny(90, True), allow(100, False)),
     PathKind.GATEWAY, None, None),
    ("inbound 443 only: no ephemeral ports",
     (allow(100, True), allow(100, False, "0.0.0.0/0", (443, 443))),
     PathKind.BLOCKED, "inbound", "*"),
    ("inbound ephemeral 1024-65535", (allow(100, True), allow(100, False, "0.0.0.0/0",
                                                                 (1024, 65535))),
     PathKind.GATEWAY, None, None),
    ("inbound 49152-65535 misses part of this host's 32768-60999",
     (allow(100, True), allow(100, False, "0.0.0.0/0", (49152, 65535))),
     PathKind.BLOCKED, "inbound", "*"),
    ("inbound from another range only", (allow(100, True), allow(100, False, "10.0.0.0/8")),
     PathKind.BLOCKED, "inbound", "*"),
    ("IPv6 rules never match IPv4", (allow(100, True, "::/0"), allow(100, False, "::/0")),
     PathKind.BLOCKED, "outbound", "*"),
]


@pytest.mark.parametrize("entries,path,direction,rule", [c[1:] for c in HOST_ACL_CASES],
                         ids=[c[0] for c in HOST_ACL_CASES])
def test_network_acl_of_the_host_subnet(entries, path, direction, rule):
    verdict = judge(S3_IP, facts(acls=(acl("acl-app", (SUBNET,), *entries), OPEN_ACL)))
    assert verdict.path is path, verdict.evidence
    if path is PathKind.BLOCKED:
        blocker = verdict.blocked_by[0]
        assert (blocker.kind, blocker.id, blocker.direction, blocker.rule) == (
            "network_acl", "acl-app", direction, rule)
        assert "create-network-acl-entry --network-acl-id acl-app" in blocker.fix
        assert verdict.would_take is PathKind.GATEWAY


def test_partial_ephemeral_range_names_the_dropped_ports():
    entries = (allow(100, True), allow(100, False, "0.0.0.0/0", (49152, 65535)))
    (blocker,) = judge(S3_IP, facts(acls=(acl("acl-app", (SUBNET,), *entries),))).blocked_by
    assert "ports 32768-49151 of the range" in blocker.detail and "stateless" in blocker.detail


def test_unknown_ephemeral_range_judges_against_aws_guidance():
    full = (allow(100, True), allow(100, False, "0.0.0.0/0", (1024, 65535)))
    part = (allow(100, True), allow(100, False, "0.0.0.0/0", (32768, 65535)))
    assert judge(S3_IP, facts(ephemeral=None, acls=(acl("a", (SUBNET,), *full),))
                 ).path is PathKind.GATEWAY
    verdict = judge(S3_IP, facts(ephemeral=None, acls=(acl("a", (SUBNET,), *part),)))
    assert verdict.path is PathKind.UNKNOWN and "ephemeral port range is unknown" in \
        verdict.evidence[-1]


def test_one_observed_connection_is_judged_by_its_own_port():
    entries = (allow(100, True), allow(100, False, "0.0.0.0/0", (40000, 40000)))
    f = facts(acls=(acl("acl-app", (SUBNET,), *entries),))
    assert judge(S3_IP, f, local_port=40000).path is PathKind.GATEWAY
    assert judge(S3_IP, f, local_port=40001).path is PathKind.BLOCKED
    assert judge(S3_IP, f).path is PathKind.BLOCKED


def test_nat_gateway_subnet_acl_is_judged_too():
    nat_acl = acl("acl-pub", (NAT_SUBNET,), allow(100, True), allow(100, False, "10.0.0.0/16"))
    verdict = judge(FAR_IP, facts(acls=(acl("acl-app", (SUBNET,), allow(100, True),
                                            allow(100, False)), nat_acl)))
    assert verdict.path is PathKind.BLOCKED and verdict.would_take is PathKind.PUBLIC
    (blocker,) = verdict.blocked_by
    assert blocker.id == "acl-pub" and blocker.direction == "inbound"
    assert "NAT gateway nat-1" in blocker.where and "1024-65535" in blocker.detail


def test_endpoint_in_the_host_subnet_crosses_no_acl():
    same = dataclasses.replace(ENI, subnet_id=SUBNET)
    shut = acl("acl-shut", (SUBNET,))
    verdict = judge(ENI_IP, facts(interfaces=(same,), acls=(shut,)))
    assert verdict.path is PathKind.INTERFACE
    assert judge(S3_IP, facts(interfaces=(same,), acls=(shut,))).path is PathKind.BLOCKED


def test_endpoint_subnet_acl_must_accept_443_from_the_host():
    eni_acl = acl("acl-eni", (ENI_SUBNET,), allow(100, True), allow(100, False, "10.0.0.0/16",
                                                                    (80, 80)))
    verdict = judge(ENI_IP, facts(acls=(acl("acl-app", (SUBNET,), allow(100, True),
                                            allow(100, False)), eni_acl)))
    (blocker,) = verdict.blocked_by
    assert (blocker.id, blocker.direction, blocker.rule) == ("acl-eni", "inbound", "*")


def test_acls_that_cannot_be_judged_are_unknown():
    denied = facts(problems=(("network_acls", "EC2 DescribeNetworkAcls denied"),))
    assert judge(S3_IP, denied).path is PathKind.UNKNOWN
    assert judge(S3_IP, facts(acls=())).path is PathKind.UNKNOWN     # no ACL for the subnet


def test_acl_decision_segments():
    table = acl("a", ("s",), allow(100, False, "0.0.0.0/0", (1024, 2000)),
                deny(110, False, "0.0.0.0/0", (1500, 3000)))
    segments = acl_decision(table, False, S3_IP, "ipv4", (1000, 4000))
    assert [(s.low, s.high, s.decision, s.rule) for s in segments] == [
        (1000, 1023, "deny", "*"), (1024, 2000, "allow", "100"), (2001, 3000, "deny", "110"),
        (3001, 4000, "deny", "*")]
    # An unknown remote address: a /0 rule still decides, a narrower one does not.
    narrow = acl("b", ("s",), allow(100, False, "10.0.0.0/8"), allow(200, False))
    assert [s.decision for s in acl_decision(narrow, False, None, "ipv4", (443, 443))] == [
        "unknown"]


# --- VPC Block Public Access ----------------------------------------------------------------

def bpa(mode: str, *exclusions: tuple[str, str, str], allowed: str = "allowed",
        state: str = "update-complete") -> BlockPublicAccess:
    return BlockPublicAccess(mode, state, allowed, "account", tuple(
        BlockPublicAccessExclusion(f"exclusion-{n}", m, resource, s)
        for n, (m, resource, s) in enumerate(exclusions)))


BPA_CASES = [
    # (id, routes, address, BPA, path)
    ("off: public via NAT", (LOCAL, TO_NAT), S3_IP, bpa("off"), PathKind.PUBLIC),
    ("bidirectional: NAT route blocked", (LOCAL, TO_NAT), S3_IP, bpa("block-bidirectional"),
     PathKind.BLOCKED),
    ("bidirectional: the gateway endpoint is not touched", (LOCAL, TO_NAT, TO_GW), S3_IP,
     bpa("block-bidirectional"), PathKind.GATEWAY),
    ("bidirectional: the interface endpoint is not touched", (LOCAL, TO_NAT), ENI_IP,
     bpa("block-bidirectional"), PathKind.INTERFACE),
    ("bidirectional: NAT subnet excluded allow-egress", (LOCAL, TO_NAT), S3_IP,
     bpa("block-bidirectional", ("allow-egress", NAT_SUBNET, "create-complete")),
     PathKind.PUBLIC),
    ("bidirectional: VPC excluded", (LOCAL, TO_NAT), S3_IP,
     bpa("block-bidirectional", ("allow-bidirectional", VPC, "update-complete")),
     PathKind.PUBLIC),
    ("bidirectional: only the host subnet excluded, NAT route still blocked", (LOCAL, TO_NAT),
     S3_IP, bpa("block-bidirectional", ("allow-egress", SUBNET, "create-complete")),
     PathKind.BLOCKED),
    ("bidirectional: host subnet excluded, IGW route flows", (LOCAL, TO_IGW), S3_IP,
     bpa("block-bidirectional", ("allow-egress", SUBNET, "create-complete")), PathKind.PUBLIC),
    ("bidirectional: exclusions not allowed by the Organization", (LOCAL, TO_NAT), S3_IP,
     bpa("block-bidirectional", ("allow-egress", VPC, "create-complete"), allowed="not-allowed"),
     PathKind.BLOCKED),
    ("bidirectional: deleted exclusion", (LOCAL, TO_NAT), S3_IP,
     bpa("block-bidirectional", ("allow-egress", NAT_SUBNET, "delete-complete")),
     PathKind.BLOCKED),
    ("bidirectional: egress-only IGW blocked", (LOCAL, TO_EIGW), V6_IP,
     bpa("block-bidirectional"), PathKind.BLOCKED),
    ("ingress-only: NAT egress still works", (LOCAL, TO_NAT), S3_IP, bpa("block-ingress"),
     PathKind.PUBLIC),
    ("ingress-only: egress-only IGW still works", (LOCAL, TO_EIGW), V6_IP, bpa("block-ingress"),
     PathKind.PUBLIC),
    ("ingress-only: IGW blocked", (LOCAL, TO_IGW), S3_IP, bpa("block-ingress"),
     PathKind.BLOCKED),
    ("ingress-only: IGW with allow-bidirectional exclusion", (LOCAL, TO_IGW), S3_IP,
     bpa("block-ingress", ("allow-bidirectional", SUBNET, "create-complete")), PathKind.PUBLIC),
    ("ingress-only: allow-egress is documented for bidirectional only: unknown",
     (LOCAL, TO_IGW), S3_IP, bpa("block-ingress", ("allow-egress", SUBNET, "create-complete")),
     PathKind.UNKNOWN),
    ("exclusion being created: unknown", (LOCAL, TO_NAT), S3_IP,
     bpa("block-bidirectional", ("allow-egress", NAT_SUBNET, "create-in-progress")),
     PathKind.UNKNOWN),
    ("mode being changed: unknown", (LOCAL, TO_NAT), S3_IP,
     bpa("block-bidirectional", state="update-in-progress"), PathKind.UNKNOWN),
    ("not collected with a public route: unknown", (LOCAL, TO_NAT), S3_IP, None,
     PathKind.UNKNOWN),
]


@pytest.mark.parametrize("routes,ip,options,path", [c[1:] for c in BPA_CASES],
                         ids=[c[0] for c in BPA_CASES])
def test_block_public_access(routes, ip, options, path):
    rules = (ALLOW_ALL_OUT, SecurityGroupRule("sg-h", "sgr-6", True, "-1", cidr="::/0"),
             ENI_FROM_HOST_GROUP)
    verdict = judge(ip, facts(routes=routes, bpa=options, rules=rules,
                              addresses=(HOST_IP, "2001:db8:1::10")))
    assert verdict.path is path, verdict.evidence
    if path is PathKind.BLOCKED:
        (blocker,) = verdict.blocked_by
        assert (blocker.kind, blocker.mode) == ("block_public_access", options.mode)
        assert verdict.would_take is PathKind.PUBLIC
        assert "create-vpc-block-public-access-exclusion" in blocker.fix


def test_nat_route_blocker_explains_which_subnet_must_be_excluded():
    options = bpa("block-bidirectional", ("allow-egress", SUBNET, "create-complete"))
    (blocker,) = judge(S3_IP, facts(routes=(LOCAL, TO_NAT), bpa=options)).blocked_by
    assert f"--subnet-id {NAT_SUBNET}" in blocker.fix
    assert "a NAT route leaves from the NAT gateway's subnet" in blocker.detail
    assert "gateway endpoint" in blocker.fix


# --- the target ------------------------------------------------------------------------------

def test_a_blocked_target_is_critical_whatever_is_expected():
    f = facts(rules=())
    answer = DnsAnswer("s3.eu-west-1.amazonaws.com", (ResolvedAddress(S3_IP, "ipv4", 5),))
    for expect in (Expect.ANY, Expect.GATEWAY, Expect.PRIVATE):
        verdict = verdict_for_target(Target("r", answer.host, expect), answer, f, RANGES)
        assert (verdict.path, verdict.status) == (PathKind.BLOCKED, Status.CRITICAL)
        assert verdict.would_take is PathKind.GATEWAY
        assert verdict.reason.startswith("blocked: would take gateway via vpce-gw, dropped by "
                                         "security group sg-h (egress)")
    document = verdict.to_dict()
    assert document["would_take"] == "gateway" and document["blocked_by"][0]["kind"] == \
        "security_group"
    assert document["addresses"][0]["would_take"] == "gateway"
    schema = report_schema()
    jsonschema.validate(document, {"$defs": schema["$defs"], "$ref": "#/$defs/target"})


def test_one_blocked_address_of_several_makes_the_target_critical():
    entries = (deny(90, True, "198.51.100.10/32"), allow(100, True), allow(100, False))
    f = facts(acls=(acl("acl-app", (SUBNET,), *entries),))
    answer = DnsAnswer("s3.eu-west-1.amazonaws.com", (ResolvedAddress(S3_IP, "ipv4", 5),
                                                      ResolvedAddress("198.51.100.11", "ipv4", 5)))
    verdict = verdict_for_target(Target("r", answer.host, Expect.GATEWAY), answer, f, RANGES)
    assert (verdict.path, verdict.status) == (PathKind.MIXED, Status.CRITICAL)
    assert "198.51.100.10 blocked" in verdict.reason


def test_without_filter_facts_only_routes_are_judged():
    f = facts(rules=())
    legacy = dataclasses.replace(f, inventory=dataclasses.replace(f.inventory,
                                                                  traffic_filters=None))
    assert judge(S3_IP, legacy).path is PathKind.GATEWAY
