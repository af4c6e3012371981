"""Facts and verdicts: the frozen dataclasses that flow from collectors to the engine to sinks.

Nothing here does I/O. Collectors build these from IMDS, EC2, DNS and ip-ranges.json; the
verdict engine (``s3_route_agent.engine.verdict``) turns them into ``TargetVerdict`` objects; the report module
turns those into JSON. Every class converts itself to a JSON-ready dict with ``to_dict``.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# The vocabulary lives in engine/kinds.py (loaded without the model's dataclasses); these names
# are the model's too.
from s3_route_agent.engine.kinds import (PRIVATE_PATHS, REACHING_PATHS, Expect,  # noqa: F401
                                         PathKind, Status)

if TYPE_CHECKING:  # the live-evidence sections a verdict carries (engine/evidence.py)
    from s3_route_agent.engine.evidence import (OracleSection, ProbeEvidence, ProxyEvidence,
                                                TransferResult)
    from s3_route_agent.engine.reconcile import Reconciliation
    from s3_route_agent.engine.routes import CidrSet, RouteIndex


class RouteTargetKind(str, enum.Enum):
    """What a route sends traffic to (VPC user guide, "Route table concepts": route targets)."""

    LOCAL = "local"
    GATEWAY_ENDPOINT = "gateway_endpoint"
    INTERNET_GATEWAY = "internet_gateway"
    EGRESS_ONLY_INTERNET_GATEWAY = "egress_only_internet_gateway"
    NAT_GATEWAY = "nat_gateway"
    TRANSIT_GATEWAY = "transit_gateway"
    VIRTUAL_PRIVATE_GATEWAY = "virtual_private_gateway"
    PEERING_CONNECTION = "peering_connection"
    NETWORK_INTERFACE = "network_interface"
    INSTANCE = "instance"
    GATEWAY_LOAD_BALANCER_ENDPOINT = "gateway_load_balancer_endpoint"
    LOCAL_GATEWAY = "local_gateway"
    CARRIER_GATEWAY = "carrier_gateway"
    CORE_NETWORK = "core_network"
    UNKNOWN = "unknown"


class RouteOrigin(str, enum.Enum):
    """How a route got into the table; decides priority between equal prefixes."""

    STATIC = "static"            # CreateRoute / CreateRouteTable (local) / endpoint-managed
    PROPAGATED_DX = "propagated_direct_connect"
    PROPAGATED_VPN_STATIC = "propagated_vpn_static"
    PROPAGATED_VPN_BGP = "propagated_vpn_bgp"
    PROPAGATED = "propagated"    # propagated, source unknown


@dataclass(frozen=True)
class Route:
    """One route of a VPC route table, as DescribeRouteTables returns it."""

    destination: str                 # CIDR ("0.0.0.0/0", "::/0") or prefix-list id ("pl-...")
    target_id: str                   # "local", "igw-...", "nat-...", "vpce-...", "tgw-...", ...
    target_kind: RouteTargetKind
    origin: RouteOrigin = RouteOrigin.STATIC
    state: str = "active"            # "active" or "blackhole"

    @property
    def is_prefix_list(self) -> bool:
        """True for a route whose destination is a managed prefix list."""
        return self.destination.startswith("pl-")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"destination": self.destination, "target": self.target_id,
                "kind": self.target_kind.value, "origin": self.origin.value, "state": self.state}


@dataclass(frozen=True)
class RouteTable:
    """The route table a subnet uses, and why that one."""

    id: str
    vpc_id: str
    association: str                 # "explicit" (subnet association) or "main" (VPC main table)
    routes: tuple[Route, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "vpc_id": self.vpc_id, "association": self.association,
                "routes": [r.to_dict() for r in self.routes]}


@dataclass(frozen=True)
class PrefixList:
    """A managed prefix list and its CIDRs (GetManagedPrefixListEntries)."""

    id: str
    name: str
    version: int | None
    cidrs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "name": self.name, "version": self.version, "cidrs": list(self.cidrs)}

    @functools.cached_property
    def cidr_set(self) -> "CidrSet":
        """The entries parsed once, searchable by address (:class:`engine.routes.CidrSet`)."""
        from s3_route_agent.engine.routes import CidrSet
        return CidrSet(self.cidrs)


@dataclass(frozen=True)
class VpcEndpoint:
    """A VPC endpoint as DescribeVpcEndpoints returns it (fields the verdict needs)."""

    id: str
    type: str                        # "Gateway", "Interface", "GatewayLoadBalancer"
    service_name: str
    state: str                       # "available", "pending", "deleting", ...
    vpc_id: str
    route_table_ids: tuple[str, ...] = ()
    network_interface_ids: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    private_dns_enabled: bool = False
    private_dns_only_for_inbound_resolver_endpoint: bool | None = None
    ip_address_type: str | None = None   # "ipv4", "dualstack", "ipv6"
    policy_document: str | None = None
    owner_id: str | None = None          # the account that owns the endpoint (OwnerId)
    # ServiceRegion of a cross-Region interface endpoint, as DescribeVpcEndpoints says it (moto
    # does not echo it; :attr:`service_region_served` falls back on the service name's region).
    service_region: str | None = None
    dns_record_ip_type: str | None = None    # DnsOptions.DnsRecordIpType: ipv4, ipv6, dualstack, service-defined
    security_group_ids: tuple[str, ...] = ()  # Groups: the interface endpoint ENIs' security groups
    subnet_ids: tuple[str, ...] = ()

    @property
    def service_region_served(self) -> str | None:
        """The region whose service this endpoint carries: ServiceRegion, else the service name's
        region (``com.amazonaws.REGION.s3``); None for region-less services (MRAP)."""
        if self.service_region:
            return self.service_region
        parts = self.service_name.split(".")
        if len(parts) == 4 and parts[:2] == ["com", "amazonaws"] and parts[2] != "s3-global":
            return parts[2]
        return None

    @property
    def carries_ipv6(self) -> bool:
        """True when the endpoint carries IPv6 (IpAddressType dualstack or ipv6): PrivateLink
        guide, "IP address types" (https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html#aws-service-ip-address-type)
        and "Gateway endpoints" (https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-endpoints.html)."""
        return self.ip_address_type in ("dualstack", "ipv6")

    @property
    def is_available(self) -> bool:
        """True when the endpoint carries traffic (state available)."""
        return self.state.lower() == "available"

    @property
    def kind(self) -> str:
        """``gateway``, ``interface`` or ``gatewayloadbalancer`` (the type, lower case)."""
        return self.type.lower()

    def serves_s3_of(self, region: str | None = None) -> bool:
        """True when this is an S3 endpoint (``com.amazonaws.REGION.s3``), of ``region`` if given.

        Service names: VPC PrivateLink guide, "AWS services that integrate with AWS
        PrivateLink" (S3: com.amazonaws.region.s3).
        """
        parts = self.service_name.split(".")
        return (len(parts) == 4 and parts[:2] == ["com", "amazonaws"] and parts[3] == "s3"
                and self.kind in ("gateway", "interface")
                and (region is None or self.service_region_served == region))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the policy document is left out: it can be long)."""
        return {"id": self.id, "type": self.type, "service_name": self.service_name,
                "state": self.state, "vpc_id": self.vpc_id,
                "route_table_ids": list(self.route_table_ids),
                "network_interface_ids": list(self.network_interface_ids),
                "dns_names": list(self.dns_names), "private_dns_enabled": self.private_dns_enabled,
                "private_dns_only_for_inbound_resolver_endpoint":
                    self.private_dns_only_for_inbound_resolver_endpoint,
                "ip_address_type": self.ip_address_type, "owner_id": self.owner_id,
                "service_region": self.service_region,
                "dns_record_ip_type": self.dns_record_ip_type,
                "security_group_ids": list(self.security_group_ids),
                "subnet_ids": list(self.subnet_ids)}


@dataclass(frozen=True)
class NetworkInterface:
    """An ENI found by id or by private address, with the endpoint it belongs to, if any."""

    id: str
    vpc_id: str
    subnet_id: str | None
    interface_type: str              # AWS: "vpc_endpoint" for endpoint ENIs; moto says "interface"
    description: str
    addresses: tuple[str, ...]       # private IPv4 and IPv6 addresses
    endpoint_id: str | None          # vpce id when the ENI belongs to an interface endpoint
    security_group_ids: tuple[str, ...] = ()   # Groups (empty: not known)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "vpc_id": self.vpc_id, "subnet_id": self.subnet_id,
                "interface_type": self.interface_type, "description": self.description,
                "addresses": list(self.addresses), "endpoint_id": self.endpoint_id,
                "security_group_ids": list(self.security_group_ids)}


@dataclass(frozen=True)
class NatGateway:
    """A NAT gateway of the VPC (DescribeNatGateways), used to recognise the NAT hop."""

    id: str
    subnet_id: str | None
    private_addresses: tuple[str, ...]
    public_addresses: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "subnet_id": self.subnet_id,
                "private_addresses": list(self.private_addresses),
                "public_addresses": list(self.public_addresses)}


@dataclass(frozen=True)
class SecurityGroupRule:
    """One rule of a security group, as DescribeSecurityGroupRules returns it.

    Security groups hold allow rules only; the rules of every group on an interface are
    aggregated, and they are stateful: the reply of an allowed connection is allowed whatever
    the rules of the other direction (VPC user guide, "Security group rules",
    https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html).
    """

    group_id: str
    rule_id: str
    egress: bool
    protocol: str                    # "-1" (all), "tcp" / "6", "udp" / "17", "icmp", ...
    from_port: int | None = None     # None or -1: every port
    to_port: int | None = None
    cidr: str | None = None          # CidrIpv4 or CidrIpv6
    prefix_list_id: str | None = None
    referenced_group_id: str | None = None

    @property
    def peer(self) -> str:
        """What the rule names on the other side: a CIDR, a prefix list or a security group."""
        return self.cidr or self.prefix_list_id or self.referenced_group_id or "?"

    def describe(self) -> str:
        """``tcp/443 to pl-…`` / ``all traffic from sg-…``: the rule as a person reads it."""
        if self.protocol in ("-1", "all"):
            what = "all traffic"
        elif self.from_port in (None, -1) or (self.from_port, self.to_port) == (0, 65535):
            what = f"{self.protocol}/all ports"
        elif self.from_port == self.to_port:
            what = f"{self.protocol}/{self.from_port}"
        else:
            what = f"{self.protocol}/{self.from_port}-{self.to_port}"
        return f"{what} {'to' if self.egress else 'from'} {self.peer} ({self.rule_id})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"group_id": self.group_id, "rule_id": self.rule_id, "egress": self.egress,
                "protocol": self.protocol, "from_port": self.from_port, "to_port": self.to_port,
                "cidr": self.cidr, "prefix_list_id": self.prefix_list_id,
                "referenced_group_id": self.referenced_group_id}


@dataclass(frozen=True)
class NetworkAclEntry:
    """One numbered rule of a network ACL (DescribeNetworkAcls ``Entries``).

    Rule 32767 is how the API shows the ``*`` rule, which denies what no other rule matched
    (VPC user guide, "Network ACL rules",
    https://docs.aws.amazon.com/vpc/latest/userguide/nacl-rules.html).
    """

    rule_number: int
    egress: bool
    action: str                      # "allow" or "deny"
    protocol: str                    # "-1" (all), "6" (TCP), "17", "1", ...
    cidr: str                        # CidrBlock or Ipv6CidrBlock
    port_from: int | None = None     # PortRange (TCP/UDP only)
    port_to: int | None = None

    @property
    def rule_label(self) -> str:
        """The rule number as the console shows it: ``100``, or ``*`` for the default rule."""
        return "*" if self.rule_number >= 32767 else str(self.rule_number)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rule_number": self.rule_number, "egress": self.egress, "action": self.action,
                "protocol": self.protocol, "cidr": self.cidr, "port_from": self.port_from,
                "port_to": self.port_to}


@dataclass(frozen=True)
class NetworkAcl:
    """A network ACL and the subnets associated with it."""

    id: str
    vpc_id: str
    subnet_ids: tuple[str, ...]
    entries: tuple[NetworkAclEntry, ...]
    is_default: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "vpc_id": self.vpc_id, "subnet_ids": list(self.subnet_ids),
                "entries": [e.to_dict() for e in self.entries], "is_default": self.is_default}


# Exclusion states that are in force, and those whose effect is changing (EC2 API reference,
# VpcBlockPublicAccessExclusion.State,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_VpcBlockPublicAccessExclusion.html).
BPA_EXCLUSION_IN_FORCE = frozenset({"create-complete", "update-complete"})
BPA_EXCLUSION_CHANGING = frozenset({"create-in-progress", "update-in-progress", "update-failed",
                                    "delete-in-progress", "disable-in-progress"})


@dataclass(frozen=True)
class BlockPublicAccessExclusion:
    """A VPC Block Public Access exclusion of a VPC or a subnet."""

    id: str
    mode: str                        # "allow-bidirectional" or "allow-egress"
    resource_id: str                 # "vpc-…" or "subnet-…" (from the ResourceArn)
    state: str

    @property
    def in_force(self) -> bool:
        """True when the exclusion applies now."""
        return self.state in BPA_EXCLUSION_IN_FORCE

    @property
    def changing(self) -> bool:
        """True when the exclusion is being created, changed or removed: its effect is unsure."""
        return self.state in BPA_EXCLUSION_CHANGING

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "mode": self.mode, "resource_id": self.resource_id,
                "state": self.state}


@dataclass(frozen=True)
class BlockPublicAccess:
    """The account's VPC Block Public Access options in this region, and the exclusions that
    can apply to this host (EC2 API reference, VpcBlockPublicAccessOptions,
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_VpcBlockPublicAccessOptions.html)."""

    mode: str                        # "off", "block-bidirectional", "block-ingress"
    state: str = "default-state"     # "default-state", "update-in-progress", "update-complete"
    exclusions_allowed: str | None = None   # "allowed" / "not-allowed" (set by the Organization)
    managed_by: str | None = None    # "account" / "declarative-policy"
    exclusions: tuple[BlockPublicAccessExclusion, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"mode": self.mode, "state": self.state,
                "exclusions_allowed": self.exclusions_allowed, "managed_by": self.managed_by,
                "exclusions": [e.to_dict() for e in self.exclusions]}


# The facets of TrafficFilters, each collected by its own EC2 call.
FILTER_FACETS = ("security_groups", "network_acls", "block_public_access")


@dataclass(frozen=True)
class TrafficFilters:
    """What can drop traffic the route table lets through: this host's security groups (and the
    endpoint ENIs'), the network ACLs of the subnets on the way, VPC Block Public Access.

    ``problems`` holds (facet, why) for each facet that could not be collected (the instance role
    lacks the permission, no security group ids are known); verdicts that depend on such a facet
    are ``unknown``, never guessed.
    """

    host_security_group_ids: tuple[str, ...] | None = None   # None: unknown
    host_addresses: tuple[str, ...] = ()     # this host's private addresses (empty: unknown)
    security_group_rules: tuple[SecurityGroupRule, ...] = ()
    described_groups: tuple[str, ...] = ()   # groups whose rules were asked for
    network_acls: tuple[NetworkAcl, ...] = ()
    block_public_access: BlockPublicAccess | None = None     # None: not asked (no public route)
    problems: tuple[tuple[str, str], ...] = ()

    def problem(self, facet: str) -> str | None:
        """Why ``facet`` is unknown, or None when it was collected."""
        return dict(self.problems).get(facet)

    def acl_of(self, subnet_id: str | None) -> NetworkAcl | None:
        """The network ACL associated with ``subnet_id``, if it was collected."""
        return next((a for a in self.network_acls if subnet_id and subnet_id in a.subnet_ids),
                    None)

    def rules_of(self, group_ids: tuple[str, ...], egress: bool) -> tuple[SecurityGroupRule, ...]:
        """The rules of ``group_ids`` in one direction."""
        return tuple(r for r in self.security_group_rules
                     if r.group_id in group_ids and r.egress is egress)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"host_security_group_ids": (list(self.host_security_group_ids)
                                            if self.host_security_group_ids is not None
                                            else None),
                "host_addresses": list(self.host_addresses),
                "security_group_rules": [r.to_dict() for r in self.security_group_rules],
                "described_groups": list(self.described_groups),
                "network_acls": [a.to_dict() for a in self.network_acls],
                "block_public_access": (self.block_public_access.to_dict()
                                        if self.block_public_access else None),
                "problems": [list(p) for p in self.problems]}


@dataclass(frozen=True)
class Identity:
    """Where the agent runs: from IMDSv2, overridden by config."""

    region: str
    vpc_id: str
    subnet_id: str
    instance_id: str | None = None
    availability_zone: str | None = None
    mac: str | None = None
    interface_id: str | None = None
    local_ipv4s: tuple[str, ...] = ()
    ipv6s: tuple[str, ...] = ()
    source: str = "imds"             # "imds", "config" or "imds+config"
    # network/interfaces/macs/MAC/security-group-ids (empty: not known, e.g. config identity)
    security_group_ids: tuple[str, ...] = ()
    # Where the region came from: "config" (aws.region), "imds", or "environment"
    # (AWS_REGION / AWS_DEFAULT_REGION, when neither config nor IMDS gave one)
    region_source: str = "imds"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"region": self.region, "vpc_id": self.vpc_id, "subnet_id": self.subnet_id,
                "instance_id": self.instance_id, "availability_zone": self.availability_zone,
                "mac": self.mac, "interface_id": self.interface_id,
                "local_ipv4s": list(self.local_ipv4s), "ipv6s": list(self.ipv6s),
                "security_group_ids": list(self.security_group_ids), "source": self.source,
                "region_source": self.region_source}


@dataclass(frozen=True)
class Inventory:
    """What EC2 says about this subnet's routing and the VPC's S3 endpoints."""

    region: str
    vpc_id: str
    subnet_id: str
    route_table: RouteTable | None
    prefix_lists: tuple[PrefixList, ...]
    endpoints: tuple[VpcEndpoint, ...]
    interfaces: tuple[NetworkInterface, ...]
    nat_gateways: tuple[NatGateway, ...] = ()
    fetched_at: float = 0.0          # epoch seconds
    s3_prefix_list_id: str | None = None
    # Security groups, network ACLs and Block Public Access (None: not collected, e.g. a cache
    # written before they were; the verdict then judges routes only).
    traffic_filters: TrafficFilters | None = None
    # S3 endpoints of other VPCs whose ENIs this host's names resolved to (centralised
    # endpoints), and ids of endpoints that are not S3 endpoints (another service, Resource or
    # ServiceNetwork type): an address on their ENIs is never an S3 interface endpoint.
    remote_endpoints: tuple[VpcEndpoint, ...] = ()
    non_s3_endpoint_ids: tuple[str, ...] = ()

    def prefix_list(self, prefix_list_id: str) -> PrefixList | None:
        """The prefix list with this id, if its entries are known."""
        return next((p for p in self.prefix_lists if p.id == prefix_list_id), None)

    @functools.cached_property
    def route_index(self) -> "RouteIndex":
        """The route table's routes and their prefix lists' entries, parsed once for every
        address of every run that uses this inventory (:class:`engine.routes.RouteIndex`).

        Cached in the instance's ``__dict__`` (a frozen dataclass allows that; fields, equality
        and ``dataclasses.replace`` ignore it: a replaced inventory builds its own)."""
        from s3_route_agent.engine.routes import RouteIndex
        return RouteIndex(self.route_table.routes if self.route_table else (), self)

    def endpoint(self, endpoint_id: str) -> VpcEndpoint | None:
        """The S3 endpoint with this id: one of this VPC's, or a remote one an address led to."""
        return next((e for e in self.endpoints + self.remote_endpoints if e.id == endpoint_id),
                    None)

    def nat_gateway(self, nat_gateway_id: str) -> NatGateway | None:
        """The NAT gateway with this id, if it is an available one of this VPC."""
        return next((n for n in self.nat_gateways if n.id == nat_gateway_id), None)

    def s3_endpoints(self, region: str | None = None,
                     kind: str | None = None) -> tuple[VpcEndpoint, ...]:
        """The VPC's S3 endpoints: of ``region`` (None: any region) and ``kind`` ("gateway",
        "interface"; None: both)."""
        return tuple(e for e in self.endpoints if e.serves_s3_of(region)
                     and (kind is None or e.kind == kind))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"region": self.region, "vpc_id": self.vpc_id, "subnet_id": self.subnet_id,
                "route_table": self.route_table.to_dict() if self.route_table else None,
                "prefix_lists": [p.to_dict() for p in self.prefix_lists],
                "endpoints": [e.to_dict() for e in self.endpoints],
                "interfaces": [i.to_dict() for i in self.interfaces],
                "nat_gateways": [n.to_dict() for n in self.nat_gateways],
                "fetched_at": self.fetched_at,
                "s3_prefix_list_id": self.s3_prefix_list_id,
                "traffic_filters": (self.traffic_filters.to_dict() if self.traffic_filters
                                    else None),
                "remote_endpoints": [e.to_dict() for e in self.remote_endpoints],
                "non_s3_endpoint_ids": list(self.non_s3_endpoint_ids)}


@dataclass(frozen=True)
class S3Range:
    """One S3 address range from ip-ranges.json."""

    network: str                     # "52.218.0.0/17"
    region: str                      # "eu-west-1", or "GLOBAL"


@dataclass(frozen=True)
class ResolvedAddress:
    """One address a hostname resolved to."""

    ip: str
    family: str                      # "ipv4" or "ipv6"
    ttl: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ip": self.ip, "family": self.family, "ttl": self.ttl}


@dataclass(frozen=True)
class DnsFailure:
    """Why a hostname did not resolve; the kinds stay distinct."""

    kind: str                        # nxdomain, no_data, timeout, servfail, refused, no_nameservers, error
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class DnsAnswer:
    """What DNS said about one hostname."""

    host: str
    addresses: tuple[ResolvedAddress, ...]
    cname_chain: tuple[str, ...] = ()
    nameserver: str | None = None
    latency_ms: float = 0.0
    failure: DnsFailure | None = None

    @property
    def ok(self) -> bool:
        """True when the name resolved to at least one address."""
        return self.failure is None and bool(self.addresses)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"host": self.host, "addresses": [a.to_dict() for a in self.addresses],
                "cname_chain": list(self.cname_chain), "nameserver": self.nameserver,
                "latency_ms": round(self.latency_ms, 1),
                "failure": self.failure.to_dict() if self.failure else None}


@dataclass(frozen=True)
class Target:
    """A hostname to check and what its path should be."""

    name: str
    host: str
    expect: Expect
    bucket: str | None = None
    # Who asked for it: "config" (the user's ``targets``), "default" (the built-in defaults used
    # when no targets are configured) or "observed" (a name the host was seen using).
    origin: str = "config"


@dataclass(frozen=True)
class RouteMatch:
    """The route that wins for an address, and the rule that made it win."""

    route: Route
    prefix_length: int
    rule: str                        # a sentence: why this route and not another

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = self.route.to_dict()
        out.update({"prefix_length": self.prefix_length, "rule": self.rule})
        return out


@dataclass(frozen=True)
class Blocker:
    """What drops traffic the route lets through: a security group without the rule, a network
    ACL rule, or VPC Block Public Access."""

    kind: str                        # "security_group", "network_acl", "block_public_access"
    id: str                          # "sg-…" (several: "sg-a, sg-b"), "acl-…", "block-public-access"
    direction: str                   # "egress"/"ingress" (security group), "outbound"/"inbound" (ACL)
    detail: str                      # what is missing or which rule drops it
    fix: str                         # what to change
    rule: str | None = None          # network ACL rule number ("100", or "*")
    mode: str | None = None          # Block Public Access mode
    where: str | None = None         # "subnet-… (this host)", "vpce-… ENI eni-…", ...

    def summary(self) -> str:
        """One line: ``security group sg-… (egress): no rule allows …``."""
        what = {"security_group": "security group", "network_acl": "network ACL",
                "block_public_access": "VPC Block Public Access"}.get(self.kind, self.kind)
        name = self.mode if self.kind == "block_public_access" else self.id
        rule = f" rule {self.rule}" if self.rule else ""
        return f"{what} {name}{rule} ({self.direction}): {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "id": self.id, "direction": self.direction,
                "rule": self.rule, "mode": self.mode, "where": self.where,
                "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True)
class AddressVerdict:
    """The path one resolved address takes, with its evidence."""

    ip: str
    family: str
    path: PathKind
    route: RouteMatch | None = None
    endpoint_id: str | None = None
    endpoint_in_vpc: bool | None = None
    s3_region: str | None = None
    evidence: tuple[str, ...] = ()
    # When a filter decides (path blocked, or unknown because a filter cannot be judged): the
    # path the route would take, and what drops the traffic.
    would_take: PathKind | None = None
    blocked_by: tuple[Blocker, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ip": self.ip, "family": self.family, "path": self.path.value,
                "endpoint_id": self.endpoint_id, "endpoint_in_vpc": self.endpoint_in_vpc,
                "route": self.route.to_dict() if self.route else None,
                "s3_region": self.s3_region, "evidence": list(self.evidence),
                "would_take": self.would_take.value if self.would_take else None,
                "blocked_by": [b.to_dict() for b in self.blocked_by]}


@dataclass(frozen=True)
class TargetVerdict:
    """The verdict for one target: its path, status and the reasons."""

    target: Target
    path: PathKind
    status: Status
    reason: str
    addresses: tuple[AddressVerdict, ...] = ()
    dns: DnsAnswer | None = None
    evidence: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    # Live evidence (live/apply.py); None when that evidence was not gathered.
    proxy: ProxyEvidence | None = None
    transfer: TransferResult | None = None
    oracle: OracleSection | None = None
    probe: ProbeEvidence | None = None
    reconciliation: Reconciliation | None = None

    @property
    def would_take(self) -> PathKind | None:
        """For a blocked target: the path its routes would take (mixed when they differ)."""
        taken = {a.would_take for a in self.addresses if a.path is PathKind.BLOCKED}
        if not taken:
            return None
        return taken.pop() if len(taken) == 1 else PathKind.MIXED

    @property
    def blocked_by(self) -> tuple[Blocker, ...]:
        """Every distinct blocker of the target's addresses, in order."""
        return tuple(dict.fromkeys(b for a in self.addresses for b in a.blocked_by))

    @property
    def transfer_seconds(self) -> float | None:
        """How long the target's test transfer took; None when none ran (off, or skipped)."""
        return self.transfer.duration_seconds if self.transfer is not None else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; each live-evidence section only when it was gathered."""
        out: dict[str, Any] = {
            "name": self.target.name, "host": self.target.host,
            "expect": self.target.expect.value, "bucket": self.target.bucket,
            "origin": self.target.origin, "path": self.path.value, "status": self.status.name, "reason": self.reason,
            "addresses": [a.to_dict() for a in self.addresses],
            "dns": self.dns.to_dict() if self.dns else None,
            "evidence": list(self.evidence), "errors": list(self.errors),
            "would_take": self.would_take.value if self.would_take else None,
            "blocked_by": [b.to_dict() for b in self.blocked_by]}
        # "reconcile" is the report's (schema's) name for the reconciliation section.
        for key, section in (("proxy", self.proxy), ("transfer", self.transfer),
                             ("oracle", self.oracle), ("probe", self.probe),
                             ("reconcile", self.reconciliation)):
            if section is not None:
                out[key] = section.to_dict()
        return out


@dataclass(frozen=True)
class Facts:
    """Everything the verdict engine needs besides the DNS answers."""

    identity: Identity | None
    inventory: Inventory | None
    s3_ranges: tuple[S3Range, ...] = ()
    problems: tuple[str, ...] = ()   # facts that are missing, one line each ("EC2: access denied ...")
    stale: str | None = None         # why the inventory is stale, when it is
    stale_warning: bool = True       # stale for longer than twice the TTL: WARNING
    # (bucket, region) from GetBucketLocation, for buckets whose region was asked (issue 4 §2)
    bucket_regions: tuple[tuple[str, str], ...] = ()
    # This host's ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range), which the
    # network ACLs must let replies back to; None: unknown.
    ephemeral_ports: tuple[int, int] | None = None

    @property
    def region(self) -> str | None:
        """This host's region: the identity's, else the inventory's."""
        if self.identity is not None:
            return self.identity.region
        return self.inventory.region if self.inventory is not None else None

    def bucket_region(self, bucket: str | None) -> str | None:
        """The region GetBucketLocation gave for ``bucket``, when it was asked."""
        return dict(self.bucket_regions).get(bucket) if bucket else None


# S3 answers that are stable facts about a bucket or about this host's permissions, and so may
# be cached; anything else (throttling, 5xx, network) is asked again on the next run.
CACHEABLE_BUCKET_ERRORS = frozenset({"AccessDenied", "NoSuchBucket"})


@dataclass(frozen=True)
class BucketFacts:
    """What S3 said about one bucket (GetBucketLocation, GetBucketPolicy)."""

    bucket: str
    region: str | None
    policy: str | None
    problems: tuple[str, ...] = ()
    location_error: str | None = None    # S3 error code of GetBucketLocation, or "network"
    policy_error: str | None = None      # same for GetBucketPolicy (NoSuchBucketPolicy is none)
    s3_calls: int = 0                    # S3 API calls made for these facts (0: from the cache)

    @property
    def policy_readable(self) -> bool:
        """True when GetBucketPolicy answered (a policy, or NoSuchBucketPolicy)."""
        return self.policy_error is None

    @property
    def cacheable(self) -> bool:
        """True when every answer is a stable fact (see CACHEABLE_BUCKET_ERRORS)."""
        return all(code in (None, *CACHEABLE_BUCKET_ERRORS)
                   for code in (self.location_error, self.policy_error))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the policy text is left out: it can be long)."""
        return {"bucket": self.bucket, "region": self.region,
                "has_policy": self.policy is not None, "problems": list(self.problems)}
