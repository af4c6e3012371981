"""What drops traffic the routes let through: security groups, network ACLs, VPC Block Public
Access. Pure: facts in, outcome out; :func:`s3_route_agent.engine.verdict.path_for_address`
turns a drop into the path ``blocked``.

The rules, each from the AWS documentation:

* **Security groups** hold allow rules only; the rules of every group on an interface are
  aggregated; they are stateful, so only the direction that opens the connection is checked:
  egress from this host's interface, and for an interface endpoint also ingress to the endpoint
  ENI (VPC user guide, "Security group rules",
  https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html; "Control traffic to
  your AWS resources using security groups",
  https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html). A rule names a CIDR,
  a prefix list (matched through its entries) or a security group (matched by the groups of the
  destination's interface, within the VPC). An interface endpoint's security groups must allow
  inbound HTTPS from the clients (PrivateLink guide, "Access an AWS service using an interface VPC
  endpoint", https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html).
* **Network ACLs** are stateless and apply where traffic crosses a subnet boundary: rules are
  evaluated in rule-number order, the first match decides, the ``*`` rule denies the rest; IPv4 and
  IPv6 rules are separate (VPC user guide, "Network ACL rules",
  https://docs.aws.amazon.com/vpc/latest/userguide/nacl-rules.html). A client's replies come back
  to its ephemeral port, so the client's subnet needs an inbound rule for the range its OS uses
  (this host's ``ip_local_port_range``), a NAT gateway's subnet one for 1024-65535 (VPC user
  guide, "Ephemeral ports",
  https://docs.aws.amazon.com/vpc/latest/userguide/nacl-ephemeral-ports.html).
* **VPC Block Public Access**: ``block-bidirectional`` blocks all traffic to and from internet
  gateways and egress-only internet gateways of the region except for excluded VPCs and subnets;
  ``block-ingress`` blocks inbound internet traffic, and traffic to and from NAT gateways and
  egress-only internet gateways still flows (EC2 API reference, VpcBlockPublicAccessOptions,
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_VpcBlockPublicAccessOptions.html;
  VPC user guide, "Block public access to VPCs and subnets",
  https://docs.aws.amazon.com/vpc/latest/userguide/security-vpc-bpa.html). An ``allow-egress``
  exclusion applies only in bidirectional mode (EC2 API reference,
  VpcBlockPublicAccessExclusion). Traffic through a NAT gateway reaches the internet from the NAT
  gateway's subnet, so the exclusion that matters for a NAT route is that of the NAT gateway's
  subnet or of its VPC ("VPC BPA basics": a NAT gateway needs an internet gateway,
  https://docs.aws.amazon.com/vpc/latest/userguide/security-vpc-bpa-basics.html). Gateway and
  interface endpoints are not internet gateways: BPA does not touch them.

Where a rule's outcome depends on a fact the agent does not have (a prefix list whose entries
are unknown, the groups of a remote ENI, this host's ephemeral range for a partial rule, an
exclusion being changed), the outcome is *unknown*, never a guess.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from dataclasses import dataclass
from typing import Iterable, Optional

from s3_route_agent.engine.model import (Blocker, BlockPublicAccess, Facts, Inventory,
                                         NetworkAcl, NetworkInterface, PathKind, RouteMatch,
                                         RouteTargetKind, SecurityGroupRule, TrafficFilters,
                                         VpcEndpoint)

logger = logging.getLogger(__name__)

HTTPS_PORT = 443
# AWS's guidance for inbound reply rules when the client's range is not known, and the range a
# NAT gateway uses for its side of a connection (VPC user guide, "Ephemeral ports").
AWS_EPHEMERAL_PORTS = (1024, 65535)
NAT_GATEWAY_PORTS = (1024, 65535)
_TCP = ("tcp", "6")
_ALL = ("-1", "all")
_ACL_DEFAULT_RULE = 32767

# A three-valued match: True, False, or None (depends on a fact the agent does not have).
Match = Optional[bool]


@dataclass(frozen=True)
class FilterOutcome:
    """What the filters do to one connection: what drops it, what cannot be judged, what let it
    through (evidence sentences)."""

    blocked_by: tuple[Blocker, ...] = ()
    unknown: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()

    @property
    def blocked(self) -> bool:
        """True when at least one filter certainly drops the connection."""
        return bool(self.blocked_by)

    def __add__(self, other: "FilterOutcome") -> "FilterOutcome":
        return FilterOutcome(self.blocked_by + other.blocked_by, self.unknown + other.unknown,
                             self.evidence + other.evidence)


@dataclass(frozen=True)
class Connection:
    """One TCP connection this host opens to ``destination``, as the route would carry it."""

    destination: str
    family: str
    port: int                              # the destination port (443)
    local_ports: tuple[int, int]           # the source ports this host may use
    local_ports_known: bool                # False: AWS's guidance range stands in for them
    path: PathKind                         # the path the route gives it
    route: RouteMatch | None
    eni: NetworkInterface | None = None    # the destination's interface, when the VPC holds it
    endpoint: VpcEndpoint | None = None    # the interface endpoint of that ENI


def connection_filters(connection: Connection, facts: Facts) -> FilterOutcome | None:
    """Run every filter on ``connection``; None when the inventory carries no filter facts."""
    inventory = facts.inventory
    filters = inventory.traffic_filters if inventory is not None else None
    if inventory is None or filters is None:
        return None
    outcome = host_egress(connection, inventory, filters)
    if connection.path is PathKind.INTERFACE and connection.eni is not None:
        outcome += endpoint_ingress(connection, inventory, filters)
    outcome += network_acls(connection, inventory, filters)
    if connection.path is PathKind.PUBLIC and connection.route is not None:
        outcome += block_public_access(connection, inventory, filters)
    return outcome


# ---------------------------------------------------------------------------------------------
# address helpers


@functools.lru_cache(maxsize=16384)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    # Cached: the same rule and ACL CIDRs are asked about for every address of every target.
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _family(cidr_or_ip: str) -> str | None:
    net = _network(cidr_or_ip)
    if net is None:
        return None
    return "ipv6" if net.version == 6 else "ipv4"


def cidr_holds(cidr: str, address: str | None, family: str) -> Match:
    """Does ``cidr`` hold ``address``? None when the address is unknown and the CIDR is not
    the whole address space of its family."""
    net = _network(cidr)
    if net is None or _family(cidr) != family:
        return False
    if address is None:
        return True if net.prefixlen == 0 else None
    addr = _address(address)
    return addr is not None and addr in net


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Cached as _network is: every rule and ACL entry asks about the same few addresses.
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _host_address(filters: TrafficFilters, family: str) -> str | None:
    """This host's private address of ``family`` (the source of its connections), if known."""
    return next((a for a in filters.host_addresses if _family(a) == family), None)


# ---------------------------------------------------------------------------------------------
# security groups


def _port_in(rule: SecurityGroupRule, port: int) -> bool:
    if rule.protocol in _ALL:
        return True
    if rule.protocol not in _TCP:
        return False
    if rule.from_port in (None, -1):
        return True
    return int(rule.from_port) <= port <= int(rule.to_port if rule.to_port is not None
                                              else rule.from_port)


def rule_matches(rule: SecurityGroupRule, peer: str | None, family: str, port: int,
                 peer_groups: tuple[str, ...] | None, inventory: Inventory) -> Match:
    """Does one security-group rule allow TCP ``port`` to/from ``peer``?

    ``peer_groups`` are the security groups of the peer's interface (``()``: the peer is no
    interface of the VPC, e.g. S3's public addresses; None: unknown).
    """
    if not _port_in(rule, port):
        return False
    if rule.cidr:
        return cidr_holds(rule.cidr, peer, family)
    if rule.prefix_list_id:
        plist = inventory.prefix_list(rule.prefix_list_id)
        if plist is None:
            return None
        # As cidr_holds over every entry, with the entries parsed once (PrefixList.cidr_set).
        entries = plist.cidr_set
        if peer is None:
            return True if family in entries.whole_space else (
                None if family in entries.families else False)
        return _family(peer) == family and entries.holds(peer)
    if rule.referenced_group_id:
        if peer_groups is None:
            return None
        return rule.referenced_group_id in peer_groups
    return False


def _allowed_by(rules: Iterable[SecurityGroupRule], peer: str | None, family: str, port: int,
                peer_groups: tuple[str, ...] | None, inventory: Inventory,
                ) -> tuple[SecurityGroupRule | None, list[SecurityGroupRule]]:
    """The first rule that allows the connection, and the rules that might (unknown)."""
    unsure: list[SecurityGroupRule] = []
    for rule in rules:
        match = rule_matches(rule, peer, family, port, peer_groups, inventory)
        if match is True:
            return rule, unsure
        if match is None:
            unsure.append(rule)
    return None, unsure


def _peer_groups(connection: Connection, inventory: Inventory) -> tuple[str, ...] | None:
    """The destination's security groups: () for an address no interface of ours holds."""
    eni = connection.eni
    if eni is None:
        return ()
    if eni.vpc_id != inventory.vpc_id:
        # Security-group references work within a VPC (and over peering or a transit gateway
        # only where enabled): for another VPC's interface the agent cannot tell.
        return None
    groups = eni.security_group_ids or (connection.endpoint.security_group_ids
                                        if connection.endpoint else ())
    return groups or None


def host_egress(connection: Connection, inventory: Inventory,
                filters: TrafficFilters) -> FilterOutcome:
    """This host's security groups must allow the connection out (they are stateful)."""
    ip, port, family = connection.destination, connection.port, connection.family
    problem = filters.problem("security_groups")
    groups = filters.host_security_group_ids
    if problem or groups is None or not groups:
        why = problem or "this host's security groups are unknown"
        return FilterOutcome(unknown=(f"Whether this host's security groups allow tcp/{port} to "
                                      f"{ip} is unknown: {why}.",))
    rules = filters.rules_of(groups, egress=True)
    missing = [g for g in groups if g not in filters.described_groups]
    allowed, unsure = _allowed_by(rules, ip, family, port, _peer_groups(connection, inventory),
                                  inventory)
    names = ", ".join(groups)
    if allowed is not None:
        return FilterOutcome(evidence=(f"Security group {allowed.group_id} allows egress "
                                       f"{allowed.describe()}: tcp/{port} to {ip} may leave "
                                       "this host.",))
    if unsure or missing:
        why = (f"the rules of {', '.join(missing)} are unknown" if missing else
               "it depends on " + ", ".join(r.describe() for r in unsure)
               + " (entries or groups the agent does not know)")
        return FilterOutcome(unknown=(f"Whether security group(s) {names} allow egress tcp/{port} "
                                      f"to {ip} is unknown: {why}.",))
    return FilterOutcome(blocked_by=(Blocker(
        kind="security_group", id=names, direction="egress", where="this host's interface",
        detail=f"no egress rule of {names} allows tcp/{port} to {ip}"
               + _destination_note(connection, inventory),
        fix=_egress_fix(connection, inventory, groups[0])),))


def _destination_note(connection: Connection, inventory: Inventory) -> str:
    """What the destination is, for the blocker's sentence."""
    if connection.path is PathKind.GATEWAY and connection.route is not None:
        return f" (S3 prefix list {connection.route.route.destination}, the gateway endpoint's)"
    if connection.path is PathKind.INTERFACE and connection.eni is not None:
        return f" (ENI {connection.eni.id} of interface endpoint {connection.eni.endpoint_id})"
    return ""


def _egress_fix(connection: Connection, inventory: Inventory, group: str) -> str:
    """The smallest egress rule that lets the connection out."""
    port = connection.port
    if connection.path is PathKind.GATEWAY and connection.route is not None:
        plist = connection.route.route.destination
        return (f"add an egress rule to {group}: TCP {port} to prefix list {plist} (aws ec2 "
                f"authorize-security-group-egress --group-id {group} --ip-permissions "
                f"'IpProtocol=tcp,FromPort={port},ToPort={port},"
                f"PrefixListIds=[{{PrefixListId={plist}}}]')")
    if connection.path is PathKind.INTERFACE and connection.eni is not None:
        target = (connection.eni.security_group_ids or (connection.destination + "/32",))[0]
        return f"add an egress rule to {group}: TCP {port} to {target} (the endpoint's ENIs)"
    s3_list = inventory.s3_prefix_list_id
    if s3_list and inventory.prefix_list(s3_list) and cidr_in_list(
            connection.destination, inventory, s3_list):
        return f"add an egress rule to {group}: TCP {port} to prefix list {s3_list}"
    width = "128" if connection.family == "ipv6" else "32"
    return f"add an egress rule to {group}: TCP {port} to {connection.destination}/{width}"


def cidr_in_list(address: str, inventory: Inventory, prefix_list_id: str) -> bool:
    """True when a known prefix list holds ``address``."""
    plist = inventory.prefix_list(prefix_list_id)
    return plist is not None and _family(address) is not None and plist.cidr_set.holds(address)


def endpoint_ingress(connection: Connection, inventory: Inventory,
                     filters: TrafficFilters) -> FilterOutcome:
    """The interface endpoint ENI's security groups must let this host in on the port."""
    eni, port, family = connection.eni, connection.port, connection.family
    assert eni is not None
    source = _host_address(filters, family)
    groups = eni.security_group_ids or (connection.endpoint.security_group_ids
                                        if connection.endpoint else ())
    where = f"{eni.endpoint_id} ENI {eni.id}"
    problem = filters.problem("security_groups")
    if problem or not groups:
        why = problem or f"the security groups of {eni.id} are unknown"
        return FilterOutcome(unknown=(f"Whether {where} accepts tcp/{port} from this host is "
                                      f"unknown: {why}.",))
    host_groups = filters.host_security_group_ids
    if eni.vpc_id != inventory.vpc_id:
        host_groups = None      # references across VPCs: not judged (see _peer_groups)
    rules = filters.rules_of(groups, egress=False)
    missing = [g for g in groups if g not in filters.described_groups]
    allowed, unsure = _allowed_by(rules, source, family, port, host_groups, inventory)
    names = ", ".join(groups)
    who = source or "this host"
    if allowed is not None:
        return FilterOutcome(evidence=(f"Security group {allowed.group_id} of {where} allows "
                                       f"ingress {allowed.describe()}: tcp/{port} from {who} "
                                       "is accepted.",))
    if unsure or missing or source is None:
        why = (f"the rules of {', '.join(missing)} are unknown" if missing else
               "this host's address is unknown" if source is None and not unsure else
               "it depends on " + ", ".join(r.describe() for r in unsure))
        return FilterOutcome(unknown=(f"Whether security group(s) {names} of {where} allow "
                                      f"ingress tcp/{port} from {who} is unknown: {why}.",))
    peer = (filters.host_security_group_ids or (f"{source}/32",))[0]
    return FilterOutcome(blocked_by=(Blocker(
        kind="security_group", id=names, direction="ingress", where=where,
        detail=f"no ingress rule of {names} on {where} allows tcp/{port} from {source}",
        fix=f"add an ingress rule to {groups[0]}: TCP {port} from {peer} (interface endpoints "
            "must accept HTTPS from their clients)"),))


# ---------------------------------------------------------------------------------------------
# network ACLs


@dataclass(frozen=True)
class AclSegment:
    """A run of ports and what the network ACL decides for them."""

    low: int
    high: int
    decision: str                    # "allow", "deny" or "unknown"
    rule: str                        # the deciding rule ("100", "*")

    @property
    def ports(self) -> str:
        """``443`` or ``32768-60999``."""
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


def acl_decision(acl: NetworkAcl, egress: bool, remote: str | None, family: str,
                 ports: tuple[int, int]) -> list[AclSegment]:
    """First-match evaluation of ``acl`` for TCP to/from ``remote`` over a range of ports.

    Rules are taken in rule-number order; the first rule whose protocol, CIDR and ports match
    decides each port; what no rule matches falls to the ``*`` rule (deny). A rule whose CIDR
    match is unknown (``remote`` unknown) decides its ports as ``unknown``.
    """
    remaining: list[tuple[int, int]] = [ports]
    out: list[AclSegment] = []
    entries = sorted((e for e in acl.entries if e.egress is egress
                      and e.rule_number < _ACL_DEFAULT_RULE), key=lambda e: e.rule_number)
    for entry in entries:
        if not remaining:
            break
        if entry.protocol in _ALL:
            span = (0, 65535)
        elif entry.protocol in _TCP:
            span = (entry.port_from if entry.port_from is not None else 0,
                    entry.port_to if entry.port_to is not None else 65535)
        else:
            continue
        match = cidr_holds(entry.cidr, remote, family)
        if match is False:
            continue
        decision = "unknown" if match is None else entry.action.lower()
        left: list[tuple[int, int]] = []
        for low, high in remaining:
            start, end = max(low, span[0]), min(high, span[1])
            if start > end:
                left.append((low, high))
                continue
            out.append(AclSegment(start, end, decision, str(entry.rule_number)))
            if low < start:
                left.append((low, start - 1))
            if end < high:
                left.append((end + 1, high))
        remaining = left
    out.extend(AclSegment(low, high, "deny", "*") for low, high in remaining)
    return sorted(out, key=lambda s: s.low)


@dataclass(frozen=True)
class _Leg:
    """One crossing of a subnet boundary that a network ACL judges."""

    subnet_id: str
    role: str                        # "this host", "NAT gateway nat-…", "vpce-… ENI"
    egress: bool
    remote: str | None               # the address on the other side (None: unknown)
    ports: tuple[int, int]           # destination ports of the packets
    what: str                        # "tcp/443 to 198.51.100.11" / "replies from … to ports …"
    ports_known: bool = True         # False: the range is AWS's guidance, not this host's


def _legs(connection: Connection, inventory: Inventory, filters: TrafficFilters) -> list[_Leg]:
    """The subnet boundaries the connection and its replies cross, each with its ACL rule."""
    ip, port, family = connection.destination, connection.port, connection.family
    host_subnet = inventory.subnet_id
    host_ip = _host_address(filters, family)
    eph, eph_known = connection.local_ports, connection.local_ports_known
    eph_text = f"{eph[0]}-{eph[1]}" if eph[0] != eph[1] else str(eph[0])
    route = connection.route.route if connection.route else None
    legs: list[_Leg] = []
    far_subnet: str | None = None
    far_role = ""
    if connection.path is PathKind.INTERFACE and connection.eni is not None:
        far_subnet = connection.eni.subnet_id
        far_role = f"{connection.eni.endpoint_id} ENI {connection.eni.id}"
    nat = None
    if route is not None and route.target_kind is RouteTargetKind.NAT_GATEWAY:
        nat = inventory.nat_gateway(route.target_id)
        far_subnet = nat.subnet_id if nat is not None else None
        far_role = f"NAT gateway {route.target_id}"
    if far_subnet != host_subnet:
        legs.append(_Leg(host_subnet, "this host", True, ip, (port, port),
                         f"outbound tcp/{port} to {ip}"))
        legs.append(_Leg(host_subnet, "this host", False, ip, eph,
                         f"inbound replies from {ip} to this host's ports {eph_text}",
                         eph_known))
        if far_subnet is not None and nat is None:
            legs.append(_Leg(far_subnet, far_role, False, host_ip, (port, port),
                             f"inbound tcp/{port} from {host_ip or 'this host'}"))
            legs.append(_Leg(far_subnet, far_role, True, host_ip, eph,
                             f"outbound replies to {host_ip or 'this host'} ports {eph_text}",
                             eph_known))
        elif nat is not None:
            legs.append(_Leg(far_subnet, far_role, False, host_ip, (port, port),
                             f"inbound tcp/{port} from {host_ip or 'this host'} (to {ip})"))
            legs.append(_Leg(far_subnet, far_role, True, host_ip, eph,
                             f"outbound replies to {host_ip or 'this host'} ports {eph_text}",
                             eph_known))
    if nat is not None and far_subnet is not None:
        legs.append(_Leg(far_subnet, far_role, True, ip, (port, port),
                         f"outbound tcp/{port} to {ip}"))
        legs.append(_Leg(far_subnet, far_role, False, ip, NAT_GATEWAY_PORTS,
                         f"inbound replies from {ip} to the NAT gateway's ports "
                         f"{NAT_GATEWAY_PORTS[0]}-{NAT_GATEWAY_PORTS[1]}"))
    return legs


def network_acls(connection: Connection, inventory: Inventory,
                 filters: TrafficFilters) -> FilterOutcome:
    """Every network ACL on the way must allow the connection and its replies (stateless)."""
    problem = filters.problem("network_acls")
    route = connection.route.route if connection.route else None
    if route is not None and route.target_kind is RouteTargetKind.NAT_GATEWAY and \
            inventory.nat_gateway(route.target_id) is None:
        return FilterOutcome(unknown=(f"NAT gateway {route.target_id} is not among the VPC's "
                                      "available NAT gateways: the network ACL of its subnet "
                                      "cannot be judged.",))
    outcome = FilterOutcome()
    for leg in _legs(connection, inventory, filters):
        acl = filters.acl_of(leg.subnet_id)
        if problem or acl is None:
            why = problem or f"no network ACL of {leg.subnet_id} was found"
            outcome += FilterOutcome(unknown=(f"Whether the network ACL of {leg.subnet_id} "
                                              f"({leg.role}) allows {leg.what} is unknown: "
                                              f"{why}.",))
            continue
        outcome += _judge_leg(leg, acl, connection.family)
    return outcome


def _judge_leg(leg: _Leg, acl: NetworkAcl, family: str) -> FilterOutcome:
    """One leg through ``acl``: allowed, blocked (with the rule), or unknown."""
    segments = acl_decision(acl, leg.egress, leg.remote, family, leg.ports)
    denied = [s for s in segments if s.decision == "deny"]
    unsure = [s for s in segments if s.decision == "unknown"]
    direction = "outbound" if leg.egress else "inbound"
    where = f"{leg.subnet_id} ({leg.role})"
    if not denied and not unsure:
        rules = ", ".join(dict.fromkeys(s.rule for s in segments))
        return FilterOutcome(evidence=(f"Network ACL {acl.id} of {where} allows {leg.what} "
                                       f"(rule {rules}).",))
    if denied and (leg.ports_known or len(denied) == len(segments)):
        first = denied[0]
        ports = ", ".join(s.ports for s in denied)
        share = "" if len(denied) == len(segments) else f" (ports {ports} of the range)"
        detail = (f"{acl.id} of {where} denies {leg.what}{share} by rule {first.rule}"
                  + (": replies are dropped, the ACL is stateless" if "replies" in leg.what
                     else ""))
        return FilterOutcome(blocked_by=(Blocker(
            kind="network_acl", id=acl.id, direction=direction, rule=first.rule, where=where,
            detail=detail, fix=_acl_fix(leg, acl, first, family)),))
    why = ("this host's ephemeral port range is unknown and the ACL denies part of AWS's "
           f"guidance range {leg.ports[0]}-{leg.ports[1]}" if denied else
           "rule(s) " + ", ".join(dict.fromkeys(s.rule for s in unsure))
           + " depend on an address the agent does not know")
    return FilterOutcome(unknown=(f"Whether network ACL {acl.id} of {where} allows {leg.what} "
                                  f"is unknown: {why}.",))


def _acl_fix(leg: _Leg, acl: NetworkAcl, deciding: AclSegment, family: str) -> str:
    """An allow rule placed before the one that denies."""
    number = deciding.rule
    before = "" if number == "*" else f" numbered below {number}"
    width = "128" if family == "ipv6" else "32"
    peer = f"{leg.remote}/{width}" if leg.remote else ("::/0" if family == "ipv6" else "0.0.0.0/0")
    flag = "--egress" if leg.egress else "--ingress"
    cidr_flag = "--ipv6-cidr-block" if family == "ipv6" else "--cidr-block"
    return (f"add an {'outbound' if leg.egress else 'inbound'} allow rule to {acl.id}{before}: "
            f"TCP {leg.ports[0]}-{leg.ports[1]} {'to' if leg.egress else 'from'} {peer} (aws ec2 "
            f"create-network-acl-entry --network-acl-id {acl.id} {flag} --rule-number N "
            f"--protocol tcp --port-range From={leg.ports[0]},To={leg.ports[1]} {cidr_flag} "
            f"{peer} --rule-action allow)")


# ---------------------------------------------------------------------------------------------
# VPC Block Public Access


def block_public_access(connection: Connection, inventory: Inventory,
                        filters: TrafficFilters) -> FilterOutcome:
    """Does VPC Block Public Access drop this public-path connection? (module docstring)."""
    route = connection.route.route if connection.route else None
    assert route is not None
    problem = filters.problem("block_public_access")
    bpa = filters.block_public_access
    if problem or bpa is None:
        why = problem or "its options were not collected"
        return FilterOutcome(unknown=(f"Whether VPC Block Public Access drops traffic through "
                                      f"{route.target_id} is unknown: {why}.",))
    region = inventory.region
    if bpa.state == "update-in-progress":
        return FilterOutcome(unknown=(f"VPC Block Public Access of {region} is being changed "
                                      f"(to {bpa.mode}): whether it drops traffic through "
                                      f"{route.target_id} is unknown until the update "
                                      "completes.",))
    if bpa.mode == "off":
        return FilterOutcome(evidence=(f"VPC Block Public Access is off in {region}.",))
    kind = route.target_kind
    if kind is RouteTargetKind.NAT_GATEWAY:
        nat = inventory.nat_gateway(route.target_id)
        if nat is None or not nat.subnet_id:
            return FilterOutcome(unknown=(f"The subnet of NAT gateway {route.target_id} is "
                                          "unknown: whether a Block Public Access exclusion "
                                          "covers it cannot be judged.",))
        scope, scope_role = nat.subnet_id, f"NAT gateway {nat.id}'s subnet"
    else:
        scope, scope_role = inventory.subnet_id, "this host's subnet"
    gateway = {RouteTargetKind.NAT_GATEWAY: "NAT gateway",
               RouteTargetKind.INTERNET_GATEWAY: "internet gateway",
               RouteTargetKind.EGRESS_ONLY_INTERNET_GATEWAY: "egress-only internet gateway"
               }.get(kind, "gateway")
    through = f"{gateway} {route.target_id}"
    if bpa.mode == "block-ingress" and kind in (RouteTargetKind.NAT_GATEWAY,
                                                RouteTargetKind.EGRESS_ONLY_INTERNET_GATEWAY):
        return FilterOutcome(evidence=(f"VPC Block Public Access is block-ingress in {region}: "
                                       f"outbound connections through {through} still flow.",))
    if bpa.mode not in ("block-ingress", "block-bidirectional"):
        return FilterOutcome(unknown=(f"VPC Block Public Access mode {bpa.mode!r} is not one "
                                      "the agent knows.",))
    mine = [e for e in bpa.exclusions if e.resource_id in (scope, inventory.vpc_id)]
    if bpa.exclusions_allowed == "not-allowed":
        mine = []
    usable_modes = (("allow-bidirectional", "allow-egress") if bpa.mode == "block-bidirectional"
                    else ("allow-bidirectional",))
    exempt = [e for e in mine if e.in_force and e.mode in usable_modes]
    if exempt:
        return FilterOutcome(evidence=(f"VPC Block Public Access is {bpa.mode} in {region}, but "
                                       f"exclusion {exempt[0].id} ({exempt[0].mode}) of "
                                       f"{exempt[0].resource_id} exempts traffic through "
                                       f"{through}.",))
    changing = [e for e in mine if e.changing]
    egress_only = [e for e in mine if e.in_force and e.mode == "allow-egress"]
    if changing:
        return FilterOutcome(unknown=(f"Block Public Access exclusion {changing[0].id} of "
                                      f"{changing[0].resource_id} is {changing[0].state}: "
                                      f"whether traffic through {through} is dropped is "
                                      "unknown.",))
    if egress_only:
        # AWS documents allow-egress exclusions for bidirectional mode only.
        return FilterOutcome(unknown=(f"VPC Block Public Access is block-ingress and exclusion "
                                      f"{egress_only[0].id} is allow-egress, which AWS documents "
                                      f"for bidirectional mode only: whether traffic through "
                                      f"{through} flows is unknown.",))
    notes = []
    if bpa.exclusions_allowed == "not-allowed":
        notes.append("exclusions are not allowed (BPA is set by the Organization)")
    host_exclusions = [e for e in bpa.exclusions if e.resource_id == inventory.subnet_id
                       and e.in_force]
    if kind is RouteTargetKind.NAT_GATEWAY and host_exclusions and scope != inventory.subnet_id:
        notes.append(f"this host's subnet has exclusion {host_exclusions[0].id}, but a NAT "
                     f"route leaves from the NAT gateway's subnet {scope}")
    extra = f" ({'; '.join(notes)})" if notes else ""
    if kind is RouteTargetKind.NAT_GATEWAY:
        fix = (f"create an exclusion for the NAT gateway's subnet (aws ec2 "
               f"create-vpc-block-public-access-exclusion --subnet-id {scope} "
               f"--internet-gateway-exclusion-mode allow-egress), or keep S3 on the gateway "
               "endpoint, which Block Public Access does not touch")
    else:
        fix = (f"create an exclusion (aws ec2 create-vpc-block-public-access-exclusion "
               f"--subnet-id {scope} --internet-gateway-exclusion-mode "
               f"{'allow-egress' if bpa.mode == 'block-bidirectional' else 'allow-bidirectional'}"
               "), or use a VPC endpoint for S3")
    return FilterOutcome(blocked_by=(Blocker(
        kind="block_public_access", id="block-public-access", direction="egress",
        mode=bpa.mode, where=f"{scope} ({scope_role})",
        detail=f"{bpa.mode} in {region} blocks traffic through {through}, and neither {scope} "
               f"({scope_role}) nor {inventory.vpc_id} is excluded{extra}",
        fix=fix),))


def describe_block_public_access(bpa: BlockPublicAccess | None) -> str:
    """One line about the region's Block Public Access, for explain."""
    if bpa is None:
        return "VPC Block Public Access: not collected (no public route)."
    exclusions = ", ".join(f"{e.id} {e.mode} on {e.resource_id} ({e.state})"
                           for e in bpa.exclusions) or "none"
    return (f"VPC Block Public Access: {bpa.mode} ({bpa.state}"
            + (f", managed by {bpa.managed_by}" if bpa.managed_by else "")
            + (f", exclusions {bpa.exclusions_allowed}" if bpa.exclusions_allowed else "")
            + f"); exclusions: {exclusions}.")
